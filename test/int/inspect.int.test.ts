// `--inspect URL`: a node's actors reach a local WebSocket receiver; a missing inspector never
// blocks a node and never keeps a process alive.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startEtcd, startNats } from '../harness/index.ts';
import type { EtcdHandle, NatsServerHandle } from '../harness/index.ts';
import { NodeFleet } from '../../src/tools/localCluster/nodeFleet.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface WsServer {
  address(): { port: number };
  on(event: 'connection', listener: (socket: WsSocket) => void): void;
  once(event: 'listening' | 'error', listener: (err?: Error) => void): void;
  close(cb: () => void): void;
  readonly clients: Set<WsSocket>;
}
interface WsSocket {
  on(event: 'message', listener: (data: Buffer) => void): void;
  terminate(): void;
}
type WsServerConstructor = new (options: { host: string; port: number }) => WsServer;

/** A local inspector: a WebSocket server (the `ws` package `@statelyai/inspect` ships with). */
async function startReceiver(): Promise<{
  url: string;
  events: Array<Record<string, unknown>>;
  close(): Promise<void>;
}> {
  const entry = createRequire(import.meta.url).resolve('@statelyai/inspect');
  const { WebSocketServer } = createRequire(entry)('ws') as {
    WebSocketServer: WsServerConstructor;
  };
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const events: Array<Record<string, unknown>> = [];
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      events.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    });
  });
  return {
    url: `ws://127.0.0.1:${server.address().port}`,
    events,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}

/** Runs a module snippet under tsx; resolves with the exit code and how long it took. */
function runScript(
  source: string,
  timeoutMs: number,
): Promise<{ code: number | null; ms: number; out: string }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: Date.now() - started, out });
    });
  });
}

/** A script that runs a small machine with the node inspector and then has nothing left to do. */
function inspectorScript(url: string, stop: boolean): string {
  return `
    import { createActor, createMachine } from 'xstate';
    import { createNodeInspector } from './src/process/wsInspector.ts';
    const log = { info() {}, warn() {}, error() {} };
    const inspector = createNodeInspector(${JSON.stringify(url)}, log, { reconnectDelayMs: 200 });
    const actor = createActor(
      createMachine({ id: 'tiny', initial: 'a', states: { a: { on: { go: 'b' } }, b: {} } }),
      { inspect: inspector.inspect },
    ).start();
    actor.send({ type: 'go' });
    await new Promise((r) => setTimeout(r, 1000));
    actor.stop();
    ${stop ? 'inspector.stop();' : ''}
    console.log('connected', inspector.connected);
  `;
}

describe('--inspect', () => {
  let etcd: EtcdHandle;
  let nats: NatsServerHandle;
  beforeAll(async () => {
    etcd = await startEtcd();
    nats = await startNats();
  }, 120_000);
  afterAll(async () => {
    await nats?.[Symbol.asyncDispose]();
    await etcd?.[Symbol.asyncDispose]();
  });

  it("sends a node's actors and snapshots to the inspector; the node exits on SIGTERM", async () => {
    const receiver = await startReceiver();
    try {
      await using fleet = await NodeFleet.start(['i1'], {
        cluster: 'inspect1',
        nats: [nats.url],
        etcd: [etcd.endpoint],
        leaseTtlMs: 3000,
        extraArgs: ['--inspect', receiver.url],
      });
      const node = await fleet.primary(60_000);
      const deadline = Date.now() + 30_000;
      const primarySnapshot = (): boolean =>
        receiver.events.some(
          (e) =>
            e['type'] === '@xstate.snapshot' &&
            JSON.stringify(e['snapshot'] ?? null).includes('"primary"'),
        );
      while (Date.now() < deadline && !primarySnapshot()) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(
        receiver.events.some((e) => e['type'] === '@xstate.actor' && e['name'] === 'i1/masterNode'),
      ).toBe(true);
      expect(receiver.events.some((e) => e['type'] === '@xstate.event')).toBe(true);
      expect(primarySnapshot()).toBe(true);
      expect(await node.terminate(30_000)).toBe(0);
    } finally {
      await receiver.close();
    }
  });

  it('a node whose inspector is unreachable still serves and exits promptly on SIGTERM', async () => {
    const closedPort = await freePort();
    await using fleet = await NodeFleet.start(['i2'], {
      cluster: 'inspect2',
      nats: [nats.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: 3000,
      extraArgs: ['--inspect', `ws://127.0.0.1:${closedPort}`, '--handover-timeout', '200ms'],
    });
    const node = await fleet.primary(60_000);
    await node.waitForLog((l) => l.event === 'inspectorUnavailable', 30_000);
    const started = Date.now();
    expect(await node.terminate(30_000)).toBe(0);
    // The library's own adapter would retry forever; ours adds nothing to the graceful stop.
    expect(Date.now() - started).toBeLessThan(25_000);
  });

  it('never keeps a process alive: unreachable, connected, or stopped', async () => {
    const closedPort = await freePort();
    const receiver = await startReceiver();
    try {
      const runs = await Promise.all([
        runScript(inspectorScript(`ws://127.0.0.1:${closedPort}`, false), 30_000),
        runScript(inspectorScript(receiver.url, false), 30_000),
        runScript(inspectorScript(`ws://127.0.0.1:${closedPort}`, true), 30_000),
      ]);
      for (const run of runs) expect(run.code, run.out).toBe(0);
      // each script works for 1 s; without the guards they would hang until the kill at 30 s
      for (const run of runs) expect(run.ms).toBeLessThan(20_000);
      expect(runs[1]?.out).toContain('connected true');
      expect(runs[0]?.out).toContain('connected false');
      expect(
        receiver.events.some((e) => e['type'] === '@xstate.actor' && e['name'] === 'tiny'),
      ).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});
