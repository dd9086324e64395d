// Planned switchover of NodeRuntime over the memory adapters on a simulated clock: the named
// node wins every time, the old primary follows as a standby, no acknowledged write is lost
// and refusals leave the primary serving.
import { describe, expect, it } from 'vitest';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { fromEntry } from '../../src/domain/log/eventCodec.ts';
import { SwitchoverError } from '../../src/node/nodeRuntime.ts';
import { readLog } from '../../src/tools/log/logReader.ts';
import { opLogSource } from '../../src/tools/log/opLogSource.ts';
import { memoryCluster } from './memoryCluster.ts';

const TTL = 5000;
const cluster = () => memoryCluster(TTL);

describe('planned switchover (NodeRuntime, memory adapters, simulated clock)', () => {
  it('hands over to the named node each time, well within the TTL, losing no acknowledged write', async () => {
    const c = cluster();
    await c.run(3000);
    const api = await c.client();
    for (const [seg, node] of [
      ['a', 's1'],
      ['b', 's2'],
      ['c', 's3'],
    ] as const) {
      await c.settle(api.mountSegment(seg, node, 1 << 20));
    }
    const acked: { key: string; seq: number }[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 5; i++) {
        const key = `k${round}-${i}`;
        const placement = await c.settle(api.putStart(key, 64, 2));
        acked.push({ key, seq: placement.seq });
      }
      const old = c.primaries()[0]!;
      const target = c.nodes.find((n) => n !== old && n.role === 'standby')!;
      const startedAt = c.clock.now();
      const result = await c.settle(old.switchover(target.status().nodeId));
      expect(result).toMatchObject({ from: old.status().nodeId });
      for (let t = 0; c.primaries()[0] !== target && t < 30_000; t += 10) await c.run(10);
      expect(c.primaries()).toEqual([target]);
      expect(c.clock.now() - startedAt).toBeLessThan(TTL);
      expect(old.role).toBe('standby');
      expect(old.status().fences).toBe(0);
    }
    const last = await c.settle(api.putStart('after', 64, 2));
    acked.push({ key: 'after', seq: last.seq });
    const primary = c.primaries()[0]!;
    const log = (
      await c.settle(
        readLog(opLogSource(createMemoryOpLog(c.store, { nodeId: 'r', clock: c.clock }))),
      )
    ).map(fromEntry);
    log.forEach((logged, i) => expect(logged.seq).toBe(i + 1));
    for (const { key, seq } of acked) {
      expect(log[seq - 1]?.event).toMatchObject({ op: 'PUT_START', key });
    }
    expect(log.filter((l) => l.event.op === 'EPOCH')).toHaveLength(5);
    await c.run(1000);
    const digest = stateDigest(primary.store.state);
    for (const node of c.nodes) {
      expect(node.store.appliedSeq).toBe(primary.store.appliedSeq);
      expect(stateDigest(node.store.state)).toBe(digest);
    }
    await api.close();
    await c.settle(Promise.all(c.nodes.map((n) => n.stop())));
  });

  it('refuses a standby, an unknown target and the primary itself; the primary keeps serving', async () => {
    const c = cluster();
    await c.run(3000);
    const primary = c.primaries()[0]!;
    const standby = c.nodes.find((n) => n !== primary)!;
    const reasons = (p: Promise<unknown>): Promise<string> =>
      c.settle(
        p.then(
          () => 'resolved',
          (err: unknown) => (err instanceof SwitchoverError ? err.reason : String(err)),
        ),
      );
    expect(await reasons(standby.switchover())).toBe('notPrimary');
    expect(await reasons(primary.switchover('nosuch'))).toBe('unknownTarget');
    expect(await reasons(primary.switchover(primary.status().nodeId))).toBe('targetIsSelf');
    expect(primary.role).toBe('primary');
    const api = await c.client();
    await c.settle(api.mountSegment('a', 's1', 1 << 20));
    await api.close();
    await c.settle(Promise.all(c.nodes.map((n) => n.stop())));
  });

  it('a peer that never answers its probe does not hold up a handover to a ready one', async () => {
    const c = memoryCluster(TTL, {
      // n2 hangs (a paused process would); the others answer from their member records.
      probePeer: (member) =>
        member.nodeId === 'n2'
          ? new Promise<never>(() => undefined)
          : Promise.resolve({ role: member.role, appliedSeq: member.appliedSeq }),
    });
    await c.run(3000);
    const old = c.primaries()[0]!;
    const startedAt = c.clock.now();
    await c.settle(old.switchover());
    expect(c.clock.now() - startedAt).toBeLessThan(1000);
    for (let t = 0; c.primaries().length === 0 && t < 5000; t += 10) await c.run(10);
    expect(c.primaries()).toHaveLength(1);
    expect(c.primaries()[0]).not.toBe(old);
    await c.settle(Promise.all(c.nodes.map((n) => n.stop())));
  });
});
