// ElectionChecks: the EPOCH fences of a batch are checked against the coordinator once each,
// waiting (not guessing) while it cannot be reached.
import { describe, expect, it } from 'vitest';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import type { Elector } from '../../src/ports/elector.ts';
import type { LogBatch } from '../../src/ports/opLog.ts';
import { ElectionChecks } from '../../src/node/state/electionChecks.ts';
import { electedMemoryElector } from '../fixtures/electedMemoryElector.ts';
import { METADATA_DOMAIN } from '../fixtures/metadataNode.ts';

function fence(seq: number, epoch: number, nodeId: string): LogBatch {
  return {
    streamSeq: seq,
    entries: [toEntry({ seq, epoch, ts: 0, event: { op: 'EPOCH', epoch, nodeId } })],
  };
}

async function setup() {
  const clock = new SimClock(1_000_000);
  const coord = new MemoryCoordinator(clock);
  const { epoch } = await electedMemoryElector(clock, coord, { nodeId: 'n1', ttlMs: 2000 });
  const observer = createMemoryElector(coord, { nodeId: 'n2', ttlMs: 2000, clock });
  let calls = 0;
  const counted: Elector = {
    ...observer,
    election: (epoch, nodeId) => {
      calls++;
      return observer.election(epoch, nodeId);
    },
  };
  const warnings: string[] = [];
  const logger = {
    info: () => undefined,
    warn: (fields: object) => warnings.push(String((fields as { event?: string }).event)),
    error: () => undefined,
  };
  const checks = new ElectionChecks({ elector: counted, clock, logger }, 100, METADATA_DOMAIN.log);
  return { clock, coord, checks, epoch, calls: () => calls, warnings };
}

describe('ElectionChecks', () => {
  it('asks once per fence: a real election counts, a forged one does not', async () => {
    const s = await setup();
    const state = { appliedSeq: 0, epoch: 0 };
    const real = fence(1, s.epoch, 'n1');
    const forged = fence(1, s.epoch + 5, 'n3');
    const settling = Promise.all([
      s.checks.settle(real, state, () => false),
      s.checks.settle(forged, state, () => false),
    ]);
    await s.clock.advanceAsync(0);
    await settling;
    expect(s.checks.elected({ epoch: s.epoch, nodeId: 'n1' })).toBe(true);
    expect(s.checks.elected({ epoch: s.epoch + 5, nodeId: 'n3' })).toBe(false);
    const settlingAgain = s.checks.settle(real, state, () => false);
    await s.clock.advanceAsync(0);
    await settlingAgain;
    expect(s.calls()).toBe(2);
    // A fence not above the current epoch is foreign whatever etcd says: not asked.
    await s.checks.settle(fence(2, 1, 'n1'), { appliedSeq: 1, epoch: s.epoch }, () => false);
    expect(s.calls()).toBe(2);
  });

  it('waits while the coordinator cannot be reached, then decides; gives up when stopped', async () => {
    const s = await setup();
    s.coord.partition('n2');
    let done = false;
    const settling = s.checks
      .settle(fence(1, s.epoch, 'n1'), { appliedSeq: 0, epoch: 0 }, () => false)
      .then(() => {
        done = true;
      });
    await s.clock.advanceAsync(1000);
    expect(done).toBe(false);
    expect(s.warnings).toEqual(['epochCheckRetry']);
    s.coord.heal('n2');
    await s.clock.advanceAsync(200);
    await settling;
    expect(s.checks.elected({ epoch: s.epoch, nodeId: 'n1' })).toBe(true);

    s.coord.partition('n2');
    let stopped = false;
    const giving = s.checks.settle(
      fence(2, s.epoch + 1, 'n1'),
      { appliedSeq: 1, epoch: s.epoch },
      () => stopped,
    );
    await s.clock.advanceAsync(300);
    stopped = true;
    await s.clock.advanceAsync(200);
    await giving;
    expect(s.checks.elected({ epoch: s.epoch + 1, nodeId: 'n1' })).toBe(false);
  });
});
