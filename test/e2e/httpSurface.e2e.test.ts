// The HTTP surface of real node processes: malformed requests (raw sockets, for what fetch
// refuses to send) get a 4xx and change nothing; no request kills a node (fault 7: `GET //`
// made `new URL` throw out of the request handler and the process exit).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UnderstudyClient } from '../../src/client/client.ts';
import { NodeFleet, type NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { clusterStates, startTwoNodes, stopAll } from '../harness/e2eCluster.ts';
import { startNats, type EtcdHandle } from '../harness/index.ts';
import { rawMessage, rawRequest } from '../harness/rawHttp.ts';

const CLUSTER = 'surface';

const cleanups: Array<() => Promise<void>> = [];
let etcd: EtcdHandle;
let fleet: NodeFleet;
let client: UnderstudyClient;
let primary: NodeHandle;

beforeAll(async () => {
  ({ etcd, fleet, client, primary } = await startTwoNodes(cleanups, CLUSTER));
}, 120_000);

afterAll(() => stopAll(cleanups));

/** Every node's role, applied seq and state digest, once the standbys caught up. */
const clusterState = (): Promise<string[]> => clusterStates(fleet, primary);

/** A write goes through (the primary serves). */
async function writeSucceeds(key: string): Promise<void> {
  expect(await client.putStart(key, 1024, 2)).toMatchObject({ key, size: 1024 });
}

describe('fault 7: one HTTP request kills a node', () => {
  it('GET // is answered 404 by the primary and the standby; both live, a write succeeds', async () => {
    for (const node of fleet.nodes) {
      const answer = await rawRequest(node.httpPort, rawMessage('GET', '//'));
      expect(answer.status, answer.text).toBe(404);
      const malformed = await rawRequest(node.httpPort, rawMessage('GET', '/%'));
      expect(malformed.status, malformed.text).toBe(404);
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const node of fleet.nodes) expect(node.running, node.id).toBe(true);
    await writeSucceeds('after-double-slash');
    expect((await primary.status()).role).toBe('primary');
  });

  it('a starting node (waiting for NATS) answers // with 404 and keeps waiting', async () => {
    await using down = await startNats();
    await down.stop();
    await using starting = await NodeFleet.start(['w1'], {
      cluster: 'surface-starting',
      nats: [down.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: 2000,
    });
    const node = starting.node('w1');
    await node.waitForStatus((s) => s.role === 'starting', 30_000);
    const answer = await rawRequest(node.httpPort, rawMessage('GET', '//'));
    expect(answer.status, answer.text).toBe(404);
    await new Promise((r) => setTimeout(r, 200));
    expect(node.running).toBe(true);
    expect(await node.status()).toMatchObject({ role: 'starting' });
  });
});

describe('malformed HTTP requests get a 4xx and change nothing', () => {
  it('named cases: targets, sizes, chunking, header bytes, methods', async () => {
    const before = await clusterState();
    const long = `/${'a'.repeat(70 * 1024)}`;
    const cases: Array<[string, string | Uint8Array, number]> = [
      ['//', rawMessage('GET', '//'), 404],
      ['/%', rawMessage('GET', '/%'), 404],
      ['/%zz?%%=%', rawMessage('GET', '/status/%zz?%%=%'), 404],
      ['a 9 KB path', rawMessage('GET', `/${'b'.repeat(9 * 1024)}`), 414],
      ['a 70 KB path', rawMessage('GET', long), 414],
      ['a 20 KB header', rawMessage('GET', '/status', [`x-big: ${'c'.repeat(20 * 1024)}`]), 431],
      ['asterisk target', rawMessage('GET', '*'), 400],
      ['absolute form', rawMessage('GET', 'http://elsewhere/healthz'), 200],
      // Answered (405) before the body is read; the bad chunk then closes the connection.
      [
        'bad chunk size',
        rawMessage('POST', '/status', ['transfer-encoding: chunked'], 'zz\r\n'),
        405,
      ],
      [
        'chunked and content-length',
        rawMessage(
          'POST',
          '/status',
          ['transfer-encoding: chunked', 'content-length: 3'],
          '0\r\n\r\n',
        ),
        400,
      ],
      ['a NUL in a header', rawMessage('GET', '/status', ['x-bad: a\u0000b']), 400],
      ['a space in a header name', rawMessage('GET', '/status', ['x bad: 1']), 400],
      ['HTTP/9.9', 'GET /status HTTP/9.9\r\nhost: x\r\n\r\n', 400],
      ['garbage', new Uint8Array([0xff, 0x00, 0x13, 0x0d, 0x0a, 0x0d, 0x0a]), 400],
      ['CONNECT', rawMessage('CONNECT', '127.0.0.1:1'), 405],
      ['POST /status', rawMessage('POST', '/status', ['content-length: 2'], '{}'), 405],
      ['DELETE /metrics', rawMessage('DELETE', '/metrics'), 405],
      ['GET /admin/switchover', rawMessage('GET', '/admin/switchover?to=n2'), 405],
      [
        'PUT /admin/checkpoint',
        rawMessage('PUT', '/admin/checkpoint', ['content-length: 1'], 'x'),
        405,
      ],
      ['POST /inspect/events', rawMessage('POST', '/inspect/events'), 405],
      [
        'switchover to nobody',
        rawMessage('POST', '/admin/switchover?to=zz-nobody', ['content-length: 3'], '%%%'),
        404,
      ],
    ];
    for (const node of fleet.nodes) {
      for (const [name, bytes, status] of cases) {
        if (name === 'switchover to nobody' && node !== primary) continue;
        const answer = await rawRequest(node.httpPort, bytes);
        expect(answer.status, `${node.id} ${name}: ${answer.text.slice(0, 200)}`).toBe(status);
      }
    }
    for (const node of fleet.nodes) expect(node.running, node.id).toBe(true);
    expect(await clusterState()).toEqual(before);
    await writeSucceeds('after-named-cases');
  });

  it('generated requests (fast-check, 200 runs): an answer below 500, no node dies, no state change', async () => {
    const before = await clusterState();
    const routes = [
      '/healthz',
      '/readyz',
      '/metrics',
      '/status',
      '/admin/switchover',
      '/admin/checkpoint',
      '/inspect/events',
      '/test/corrupt',
      '/',
      '//',
    ];
    const text = fc.string({ unit: 'binary', maxLength: 40 });
    const target = fc.oneof(
      fc
        .tuple(fc.constantFrom(...routes), fc.string({ maxLength: 20 }))
        .map(([r, q]) => `${r}?${q}`),
      text.map((t) => `/${t}`),
      fc.constantFrom('//', '/%', '/%%', '/..%2f..', '/?%', '*', '\\', 'http://x', ''),
      fc.integer({ min: 1, max: 80 }).map((k) => `/${'%'.repeat(k * 1000)}`),
    );
    const method = fc.constantFrom(
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'DELETE',
      'PATCH',
      'OPTIONS',
      'TRACE',
      'FOO',
      'get',
    );
    const header = fc.oneof(
      fc.tuple(fc.stringMatching(/^[a-z-]{1,12}$/), text).map(([n, v]) => `${n}: ${v}`),
      text,
      fc.constantFrom(
        'transfer-encoding: chunked',
        'content-length: 5',
        'content-length: -1',
        'content-length: 99999999999999999999',
        'expect: 100-continue',
        'upgrade: websocket',
        'connection: upgrade',
      ),
    );
    const body = fc.oneof(
      text,
      fc.constantFrom('0\r\n\r\n', 'zz\r\nab\r\n', '5\r\nab', '{"key":', '{"key":1,"kind":[]}'),
      fc.integer({ min: 1, max: 100 }).map((k) => 'x'.repeat(k * 1000)),
    );
    const request = fc.record({
      node: fc.integer({ min: 0, max: fleet.nodes.length - 1 }),
      method,
      target,
      headers: fc.array(header, { maxLength: 4 }),
      body,
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const node = fleet.nodes[r.node]!;
        // Whatever is POSTed to the admin endpoints, never a real switchover or checkpoint.
        const target =
          r.method === 'POST' && r.target.startsWith('/admin/') ? `/admin/x${r.target}` : r.target;
        const answer = await rawRequest(
          node.httpPort,
          Buffer.from(rawMessage(r.method, target, r.headers, r.body), 'latin1'),
          { timeoutMs: 5_000 },
        );
        expect(node.running, node.id).toBe(true);
        expect(answer.status, answer.text.slice(0, 200)).toBeDefined();
        // A standby that is not ready answers /readyz 503: that is its answer, not a failure.
        if (!(answer.status === 503 && target.startsWith('/readyz')))
          expect(answer.status, answer.text.slice(0, 200)).toBeLessThan(500);
      }),
      { numRuns: 200, seed: 7, endOnFailure: true },
    );
    for (const node of fleet.nodes) expect(node.running, node.id).toBe(true);
    expect(await clusterState()).toEqual(before);
    await writeSucceeds('after-generated');
  });
});
