import { describe, expect, it } from 'vitest';
import { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import { createMemoryElector, MemoryCoordinator } from '../../src/adapters/memory/memoryElector.ts';
import { createMemoryOpLog, MemoryLogStore } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { createClient, type UnderstudyClient } from '../../src/client/client.ts';
import { stateDigest } from '../../src/domain/checksum.ts';
import type { Elector } from '../../src/ports/elector.ts';
import { NodeRuntime } from '../../src/runtime/nodeRuntime.ts';

const TTL = 2000;
const CLUSTER = 'sim';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Three runtimes over the memory adapters on one simulated clock. */
function cluster() {
  const clock = new SimClock(1_000_000);
  const coord = new MemoryCoordinator(clock);
  const store = new MemoryLogStore();
  const bus = new MemoryApiBus({ clock });
  const electors = new Map<string, Elector>();
  const nodes = ['n1', 'n2', 'n3'].map((nodeId) => {
    const elector = createMemoryElector(coord, { nodeId, ttlMs: TTL, clock });
    electors.set(nodeId, elector);
    return new NodeRuntime({
      nodeId,
      address: `sim://${nodeId}`,
      opLog: createMemoryOpLog(store, { nodeId, clock, timeoutMs: 1000 }),
      elector,
      apiServer: bus.serverTransport(CLUSTER),
      clock,
      logger: quiet,
      config: { leaseTtlMs: TTL },
    }).start();
  });
  /** Advances simulated time in small steps, letting every microtask and I/O callback run. */
  const run = async (ms: number, step = 10): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await new Promise((r) => setImmediate(r));
    }
  };
  /** Runs the clock until `promise` settles. */
  const settle = async <T>(promise: Promise<T>, limitMs = 60_000): Promise<T> => {
    let done = false;
    const watched = promise.finally(() => {
      done = true;
    });
    for (let t = 0; !done && t < limitMs; t += 10) await run(10);
    return watched;
  };
  const primaries = () =>
    nodes.filter((n) => n.role === 'primary' && n.actor.getSnapshot().status === 'active');
  return { clock, coord, store, bus, nodes, electors, run, settle, primaries };
}

async function client(c: ReturnType<typeof cluster>): Promise<UnderstudyClient> {
  return createClient({
    cluster: CLUSTER,
    transport: c.bus.clientTransport(CLUSTER),
    clock: c.clock,
    requestTimeoutMs: 500,
    deadlineMs: 30_000,
    random: () => 0.5,
  });
}

describe('node runtime over the memory adapters (simulated clock)', () => {
  it('elects one primary, serves writes, and fails over after a crash without losing an acknowledged write', async () => {
    const c = cluster();
    await c.run(3000);
    expect(c.primaries()).toHaveLength(1);
    const first = c.primaries()[0]!;
    const api = await client(c);
    for (const [seg, node] of [
      ['a', 's1'],
      ['b', 's2'],
      ['c', 's3'],
    ] as const) {
      await c.settle(api.mountSegment(seg, node, 1 << 20));
    }
    const acked: string[] = [];
    for (let i = 0; i < 20; i++) {
      await c.settle(api.putStart(`k${i}`, 1000, 2));
      acked.push(`k${i}`);
    }

    // Crash: the actor stops, keep-alives stop, nothing is revoked.
    first.actor.stop();
    await c.electors.get(first.status().nodeId)!.close();
    const crashedAt = c.clock.now();
    await c.run(TTL + 1500);
    const next = c.primaries();
    expect(next).toHaveLength(1);
    expect(next[0]).not.toBe(first);
    expect(c.clock.now() - crashedAt).toBeLessThanOrEqual(TTL + 1500);

    for (const key of acked) expect((await c.settle(api.get(key))).key).toBe(key);
    await c.settle(api.putStart('after', 1000, 2));
    await c.run(1000);
    const alive = c.nodes.filter((n) => n !== first);
    const digests = alive.map((n) => stateDigest(n.store.state));
    expect(new Set(alive.map((n) => n.store.appliedSeq)).size).toBe(1);
    expect(digests[0]).toBe(digests[1]);
  });

  it('a graceful stop of the primary hands over without waiting for the TTL', async () => {
    const c = cluster();
    await c.run(3000);
    const first = c.primaries()[0]!;
    const api = await client(c);
    await c.settle(api.mountSegment('a', 's1', 1 << 20));
    const stoppedAt = c.clock.now();
    await c.settle(first.stop());
    await c.settle(api.mountSegment('b', 's2', 1 << 20));
    const tookMs = c.clock.now() - stoppedAt;
    expect(c.primaries()).toHaveLength(1);
    expect(tookMs).toBeLessThan(TTL);
  });
});
