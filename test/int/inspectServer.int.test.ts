// The inspect server without a browser: it listens on loopback, answers the page's API, and
// receives the standard inspection protocol from @statelyai/inspect's WebSocket inspector.
import { createWebSocketInspector } from '@statelyai/inspect';
import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import { masterNodeMachine } from '../../machines/masterNode.machine.ts';
import type { ChartLayout } from '../../src/tools/inspect/chartLayout.ts';
import { InspectHub } from '../../src/tools/inspect/inspectHub.ts';
import { InspectServer } from '../../src/tools/inspect/inspectServer.ts';
import { diagramStateIds } from '../../src/tools/diagram.ts';
import { rawMessage, rawRequest } from '../harness/rawHttp.ts';

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the inspect server', () => {
  it('serves the page and the chart of every state of the node machine, on loopback', async () => {
    const hub = new InspectHub({ mode: 'live', title: 'test' });
    const server = await InspectServer.listen('127.0.0.1:0', {
      hub,
      machines: { masterNode: masterNodeMachine },
    });
    try {
      expect(new URL(server.url).hostname).toBe('127.0.0.1');
      const page = await fetch(`${server.url}/`);
      expect(page.headers.get('content-type')).toContain('text/html');
      expect(await page.text()).toContain('inspect.js');
      for (const asset of ['inspect.js', 'inspect.css']) {
        expect((await fetch(`${server.url}/${asset}`)).status).toBe(200);
      }
      expect((await fetch(`${server.url}/../package.json`)).status).toBe(404);
      const chart = (await (
        await fetch(`${server.url}/api/chart?machine=masterNode`)
      ).json()) as ChartLayout;
      expect(chart.states.map((s) => s.id).sort()).toEqual(
        diagramStateIds(masterNodeMachine).sort(),
      );
      // Every child box lies inside its parent's.
      for (const s of chart.states) {
        const parent = chart.states.find((p) => p.id === s.parent);
        if (parent === undefined) continue;
        expect(s.x).toBeGreaterThanOrEqual(parent.x);
        expect(s.y).toBeGreaterThanOrEqual(parent.y);
        expect(s.x + s.width).toBeLessThanOrEqual(parent.x + parent.width + 0.5);
        expect(s.y + s.height).toBeLessThanOrEqual(parent.y + parent.height + 0.5);
      }
      expect(chart.edges.every((e) => e.points.length >= 2)).toBe(true);
      expect((await fetch(`${server.url}/api/chart?machine=nope`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('answers malformed requests 4xx (`//` was a 500) and keeps serving', async () => {
    const hub = new InspectHub({ mode: 'live', title: 'test' });
    const server = await InspectServer.listen('127.0.0.1:0', { hub, machines: {} });
    try {
      const port = Number(new URL(server.url).port);
      const cases: Array<[string, number]> = [
        [rawMessage('GET', '//'), 404],
        [rawMessage('GET', '/%'), 404],
        [rawMessage('GET', '/api/chart?machine=%'), 404],
        [rawMessage('GET', `/${'a'.repeat(70 * 1024)}`), 414],
        [rawMessage('GET', '/', [`x-big: ${'b'.repeat(20 * 1024)}`]), 431],
        [rawMessage('GET', '/', ['x-bad: a\u0000b']), 400],
        [rawMessage('POST', '/api/stream', ['content-length: 1'], 'x'), 405],
        [rawMessage('GET', '*'), 400],
      ];
      for (const [bytes, status] of cases) {
        const answer = await rawRequest(port, bytes);
        expect(answer.status, answer.text.slice(0, 120)).toBe(status);
      }
      expect((await fetch(`${server.url}/`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("receives @statelyai/inspect's WebSocket inspector: actors named by connection, their machine charted", async () => {
    const hub = new InspectHub({ mode: 'live', title: 'test' });
    const server = await InspectServer.listen('127.0.0.1:0', {
      hub,
      machines: { masterNode: masterNodeMachine },
    });
    const inspector = createWebSocketInspector({ url: server.url.replace('http', 'ws') });
    try {
      const light = createMachine({
        id: 'light',
        initial: 'green',
        states: { green: { on: { next: 'yellow' } }, yellow: { on: { next: 'red' } }, red: {} },
      });
      const actor = createActor(light, { inspect: inspector.inspect }).start();
      actor.send({ type: 'next' });
      await until(
        () =>
          hub.history.some((r) => r.type === '@xstate.snapshot' && r.snapshot?.value === 'yellow'),
        10_000,
      );
      const root = hub.history.find((r) => r.type === '@xstate.actor');
      expect(root?.sessionId).toMatch(/^ws1\/x:\d+$/);
      expect(root?.node).toBe('ws1');
      const chart = (await (
        await fetch(`${server.url}/api/chart?machine=light`)
      ).json()) as ChartLayout;
      // (the client sends its definition with sorted keys)
      expect(chart.states.map((s) => s.key).sort()).toEqual(['green', 'red', 'yellow']);
      actor.stop();
    } finally {
      inspector.stop();
      await server.close();
    }
  });
});
