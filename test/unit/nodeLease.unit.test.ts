// The lease deadline has one owner: the elector's, read through one NodeLease by the write
// pipeline (commands, answers, reads, eviction), the promotion and the serve actor's watch.
import { describe, expect, it } from 'vitest';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { NotPrimaryError } from '../../src/ports/metadataService.ts';
import { LEASE_DEADLINE_PASSED, NodeLease } from '../../src/node/state/nodeLease.ts';
import { metadataPipeline, metadataReadLeases, metadataStore } from '../fixtures/metadataNode.ts';
import { electedMemoryElector } from '../fixtures/electedMemoryElector.ts';

const TTL = 3000;
const MARGIN = 500;

/** A primary's lease and write pipeline over the memory adapters on a simulated clock. */
async function primary() {
  const clock = new SimClock(10_000);
  const coord = new MemoryCoordinator(clock);
  const { elector, epoch } = await electedMemoryElector(clock, coord, {
    nodeId: 'n1',
    ttlMs: TTL,
    marginMs: MARGIN,
  });
  const lease = new NodeLease(elector, clock);
  const opLog = createMemoryOpLog(new MemoryLogStore(), { nodeId: 'n1', clock });
  const store = metadataStore();
  const faults: string[] = [];
  const { pipeline, service } = metadataPipeline({
    nodeId: 'n1',
    epoch,
    store,
    writer: opLog.openWriter({ expectedLastStreamSeq: 0 }),
    lease,
    clock,
    leases: metadataReadLeases(clock, TTL),
    evictionIntervalMs: 0,
    onFault: (reason) => faults.push(reason),
  });
  const watched: string[] = [];
  lease.watch((reason) => watched.push(reason));
  /** Runs the clock until `p` settles; its outcome (the error when it rejects). */
  const settle = async (p: Promise<unknown>): Promise<unknown> => {
    const outcome = p.then(
      (v) => v,
      (e: unknown) => e,
    );
    await clock.advanceAsync(0);
    return outcome;
  };
  const mount = (segmentId: string) =>
    settle(pipeline.execute({ type: 'mountSegment', segmentId, nodeId: 's1', size: 1 << 20 }));
  const read = (key: string) => settle(service.exists(key));
  return { clock, coord, elector, lease, pipeline, faults, watched, mount, read };
}

describe('one lease deadline (NodeLease)', () => {
  it('while keep-alives are confirmed the one deadline moves on, for reads and writes alike', async () => {
    const p = await primary();
    expect(await p.mount('a')).toEqual({ seq: 1 });
    const first = p.lease.deadline();
    expect(first).toBe(p.elector.leaseDeadline());
    await p.clock.advanceAsync(3 * TTL);
    expect(p.lease.deadline()).toBeGreaterThan(first);
    expect(p.lease.live()).toBe(true);
    expect(await p.mount('b')).toEqual({ seq: 2 });
    expect(await p.read('x')).toBe(false);
    expect(p.faults).toEqual([]);
    expect(p.watched).toEqual([]);
  });

  it('once the deadline passes (cut off from the coordinator), a read and a write both refuse', async () => {
    const p = await primary();
    expect(await p.mount('a')).toEqual({ seq: 1 });
    p.coord.partition('n1');
    const deadline = p.lease.deadline();
    await p.clock.advanceAsync(deadline - p.clock.monotonicNow() - 1);
    expect(p.lease.live()).toBe(true);
    expect(await p.read('x')).toBe(false);
    await p.clock.advanceAsync(1);
    expect(p.lease.live()).toBe(false);
    const write = await p.mount('b');
    expect(write).toBeInstanceOf(NotPrimaryError);
    expect((write as Error).message).toMatch(LEASE_DEADLINE_PASSED);
    const read = await p.read('a');
    expect(read).toBeInstanceOf(NotPrimaryError);
    // The serve actor's watch heard it at the deadline, from the same owner (the elector's own
    // timer and the watch's may both report it; the machine takes the first).
    expect(p.watched.length).toBeGreaterThanOrEqual(1);
    for (const reason of p.watched) expect(reason).toMatch(/deadline/);
  });
});
