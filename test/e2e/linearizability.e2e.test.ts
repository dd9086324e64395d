/**
 * The client contract end to end: ten clients call the API of a three-node cluster (real
 * etcd, nats-server and node processes) on 30 keys, so their calls conflict, while the primary
 * is killed with SIGKILL and later the next one is paused with SIGSTOP for twice the lease TTL.
 * Every call is recorded with its invocation and return time and its answer, and the whole
 * history is checked for linearizability against the model of the API (retried calls after a
 * lost reply must get their original answer; refusals and reads must fit one order).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import { startEtcd, startNats } from '../harness/index.ts';
import { checkHistory, formatFailures, HistoryRecorder } from '../harness/history.ts';
import { expectLinearHistory } from '../harness/logChecks.ts';
import { NodeFleet } from '../../src/tools/localCluster/nodeFleet.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import type { ApiInput } from '../harness/understudyModel.ts';
import { mulberry32 as prng } from '../../src/tools/localCluster/seededRandom.ts';

const CLUSTER = 'lin';
const TTL_MS = 2000;
const CLIENTS = 10;
const KEYS = 30;

const OPS: readonly [ApiInput['op'], number][] = [
  ['putStart', 3],
  ['putEnd', 3],
  ['get', 3],
  ['exists', 1],
  ['remove', 1.5],
  ['putRevoke', 0.5],
];

function pick(random: () => number): ApiInput {
  const key = `k${Math.floor(random() * KEYS)}`;
  let r = random() * OPS.reduce((n, [, w]) => n + w, 0);
  for (const [op, weight] of OPS) {
    r -= weight;
    if (r > 0) continue;
    return op === 'putStart'
      ? { op, key, size: 4096, replicaNum: 2 }
      : { op: op as 'putEnd' | 'putRevoke' | 'remove' | 'get' | 'exists', key };
  }
  return { op: 'exists', key };
}

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

describe('the client contract across failovers (three node processes, real etcd and nats-server)', () => {
  it('a history of 10 clients on 30 keys across a kill -9 and a SIGSTOP of the primary is linearizable', async () => {
    const etcd = await startEtcd();
    cleanups.push(async () => etcd[Symbol.asyncDispose]());
    const nats = await startNats();
    cleanups.push(async () => nats[Symbol.asyncDispose]());
    const fleet = await NodeFleet.start(['n1', 'n2', 'n3'], {
      cluster: CLUSTER,
      nats: [nats.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: TTL_MS,
    });
    cleanups.push(() => fleet[Symbol.asyncDispose]());
    await fleet.primary(60_000);

    const clients: UnderstudyClient[] = [];
    let retried = 0;
    for (let i = 0; i < CLIENTS; i++) {
      const client = await createClient({
        servers: nats.url,
        cluster: CLUSTER,
        requestTimeoutMs: 500,
        deadlineMs: 20_000,
        backoff: { initialMs: 10, maxMs: 200 },
        onFailover: () => retried++,
      });
      cleanups.push(() => client.close());
      clients.push(client);
    }
    const history = new HistoryRecorder(() => performance.now());
    for (const node of ['s1', 's2', 's3']) {
      for (const n of [0, 1]) {
        const segment: ApiInput = {
          op: 'mountSegment',
          segmentId: `${node}-seg${n}`,
          nodeId: node,
          size: 1 << 30,
        };
        expect(await history.call(clients[0]!, 0, segment)).toMatchObject({ ok: true });
      }
    }

    const seed = Date.now() >>> 0;
    console.log(`linearizability e2e: workload seed ${seed}`);
    let running = true;
    const loops = clients.map(async (client, i) => {
      const random = prng(seed + i);
      while (running) await history.call(client, i, pick(random));
    });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    await sleep(3000);
    const first = await fleet.primary(30_000);
    await first.kill();
    const second = await fleet.primary(30_000, first);
    await sleep(3000);
    second.pause();
    await fleet.primary(30_000, second);
    await sleep(2 * TTL_MS);
    second.resume();
    await sleep(3000);
    running = false;
    await Promise.all(loops);

    const ops = history.ops;
    const unknown = ops.filter((op) => op.output === undefined).length;
    const refused = ops.filter((op) => op.output?.ok === false).length;
    console.log(
      `linearizability e2e: ${ops.length} calls (${refused} refused, ${unknown} with an unknown outcome, ${retried} answered after retrying)`,
    );
    expect(ops.length).toBeGreaterThan(500);
    // The failovers made calls retry (lost replies, NOT_PRIMARY, no responders).
    expect(retried).toBeGreaterThan(0);
    const log = await readLoggedEvents(nats.url, CLUSTER);
    expectLinearHistory(log);
    // Segments of 1 GiB hold every object: the primary evicts nothing, so the clients' calls
    // are the whole history.
    expect(log.filter((e) => e.event.op === 'EVICTION')).toEqual([]);
    const started = performance.now();
    const failures = checkHistory(ops);
    console.log(`linearizability e2e: checked in ${Math.round(performance.now() - started)} ms`);
    expect(formatFailures(failures)).toBe('');
  }, 180_000);
});
