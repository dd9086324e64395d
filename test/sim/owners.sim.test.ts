// One owner each: a node's applied seq is its committed store's (status, member record and
// machine never hold another), and the lease deadline a primary acts on is its elector's, read
// through one NodeLease by the promotion, the write pipeline and the serve actor alike.
import { describe, expect, it } from 'vitest';
import { memoryCluster } from './memoryCluster.ts';

const TTL = 2000;

describe('one owner for the applied seq and the lease deadline (simulated clock)', () => {
  it("every node's status, member record and machine take the applied seq from its committed store", async () => {
    const c = memoryCluster(TTL);
    await c.run(3000);
    const api = await c.client();
    await c.settle(api.mountSegment('a', 's1', 1 << 20));
    for (let i = 0; i < 5; i++) await c.settle(api.putStart(`k${i}`, 1000, 1));
    // Long enough for every follower to fold and every member record to be refreshed.
    await c.run(2000);
    const members = await c.settle(c.electors.get('n1')!.members());
    for (const node of c.nodes) {
      const { nodeId, appliedSeq, lag } = node.status();
      expect(appliedSeq).toBe(node.store.appliedSeq);
      expect(appliedSeq).toBeGreaterThanOrEqual(7);
      expect(lag).toBe(0);
      expect(members.find((m) => m.nodeId === nodeId)?.appliedSeq).toBe(node.store.appliedSeq);
      // The machine keeps the lag it decides on, never a second applied seq.
      const context = node.actor.getSnapshot().context;
      expect(context).not.toHaveProperty('appliedSeq');
      expect(context.lag).toBe(0);
    }
  });

  it('a primary cut off from the coordinator refuses reads and writes once its one lease deadline passes', async () => {
    const c = memoryCluster(TTL);
    await c.run(3000);
    const primary = c.primaries()[0]!;
    const id = primary.status().nodeId;
    const api = await c.client();
    await c.settle(api.mountSegment('a', 's1', 1 << 20));
    await c.settle(api.putStart('k', 1000, 1));
    const elector = c.electors.get(id)!;
    c.coord.partition(id);
    const deadline = elector.leaseDeadline();
    // Just before the deadline it still serves; at it, it steps down and refuses both.
    await c.run(Math.max(0, deadline - c.clock.monotonicNow() - 20), 5);
    expect(primary.role).toBe('primary');
    await c.run(40, 5);
    expect(primary.role).not.toBe('primary');
    expect(primary.status().lastFault).toMatch(/deadline/);
    expect(primary.serving).toBe(false);
  });
});
