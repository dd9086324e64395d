import { describe, expect, it } from 'vitest';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { memoryCluster } from './memoryCluster.ts';

const TTL = 2000;
const cluster = () => memoryCluster(TTL);

describe('node runtime over the memory adapters (simulated clock)', () => {
  it('elects one primary, serves writes, and fails over after a crash without losing an acknowledged write', async () => {
    const c = cluster();
    await c.run(3000);
    expect(c.primaries()).toHaveLength(1);
    const first = c.primaries()[0]!;
    const api = await c.client();
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
    const api = await c.client();
    await c.settle(api.mountSegment('a', 's1', 1 << 20));
    const stoppedAt = c.clock.now();
    await c.settle(first.stop());
    await c.settle(api.mountSegment('b', 's2', 1 << 20));
    const tookMs = c.clock.now() - stoppedAt;
    expect(c.primaries()).toHaveLength(1);
    expect(tookMs).toBeLessThan(TTL);
  });

  it('a standby stopped gracefully gives its node id back at once, not when its lease expires', async () => {
    const c = cluster();
    await c.run(3000);
    const standby = c.nodes.find((n) => n.role === 'standby')!;
    const id = standby.status().nodeId;
    const observer = c.nodes.find((n) => n !== standby)!.status().nodeId;
    expect(c.coord.members(observer).map((m) => m.nodeId)).toContain(id);
    await c.settle(standby.stop());
    // Before this, the member record stayed until the lease expired (a TTL), and a node
    // restarted under the same id waited for it (the coldstart bench: SIGTERM then start).
    expect(c.coord.members(observer).map((m) => m.nodeId)).not.toContain(id);
  });
});
