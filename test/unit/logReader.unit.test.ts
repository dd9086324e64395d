// The one log reader (src/tools/log/logReader.ts) over the memory OpLog: a forged fence that the
// forger continues with entries of its epoch counts when judged by the log (nothing in the log
// tells it apart), and is foreign, with what follows it, when an election check is asked (once
// per claim), as a node judges it. An undecodable message is passed over and reported either way.
// The same stream read through every entry point over NATS: test/int/logReader.int.test.ts.
import { describe, expect, it } from 'vitest';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import type { MetadataEvent } from '../../src/domain/model/types.ts';
import { readLog, type SkippedItem } from '../../src/tools/log/logReader.ts';
import { opLogSource } from '../../src/tools/log/opLogSource.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

const entry = (seq: number, epoch: number, event: MetadataEvent) =>
  toEntry({ seq, epoch, ts: T0 + seq, event });

/** A log of epoch 3 by n1: its fence and a segment mounted. */
function started(): MemoryLogStore {
  const log = new MemoryLogStore();
  log.append(0, [
    entry(1, 3, { op: 'EPOCH', epoch: 3, nodeId: 'n1' }),
    entry(2, 3, { op: 'MOUNT_SEGMENT', segmentId: 's', nodeId: 'a', size: 1 << 20 }),
  ]);
  return log;
}

/** {@link started}, then garbage, then a forged fence (epoch 1e9) and an entry of its epoch. */
function store(): { store: MemoryLogStore; garbage: number; forged: number } {
  const log = started();
  const garbage = log.publishUndecodable('garbled: not a batch');
  const forged = log.append(log.lastStreamSeq, [
    entry(3, 1e9, { op: 'EPOCH', epoch: 1e9, nodeId: 'intruder' }),
    entry(4, 1e9, { op: 'UNMOUNT_SEGMENT', segmentId: 's' }),
  ]).streamSeq;
  return { store: log, garbage, forged };
}

const report = (items: readonly SkippedItem[]): string[] =>
  items.map((i) => `${i.kind} ${i.error.message}`);

describe('readLog (the one log reader) on the memory OpLog', () => {
  it('a forged fence nothing continues is foreign, and the log after it is still read (it used to end readLog)', async () => {
    const log = started();
    // An outsider's fence as entry 3, then the primary's next entries (the memory store takes
    // contiguous seqs only, so here they are 4 and 5).
    const forged = log.append(log.lastStreamSeq, [
      entry(3, 1e9, { op: 'EPOCH', epoch: 1e9, nodeId: 'intruder' }),
    ]).streamSeq;
    log.append(log.lastStreamSeq, [
      entry(4, 3, { op: 'PUT_END', key: 'k' }),
      entry(5, 3, { op: 'UNMOUNT_SEGMENT', segmentId: 's' }),
    ]);
    const skipped: SkippedItem[] = [];
    const entries = await readLog(opLogSource(createMemoryOpLog(log)), {
      onSkipped: (item) => skipped.push(item),
    });
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 4, 5]);
    expect(report(skipped)).toEqual([
      `foreign entry at seq 3 (stream message ${forged}): foreign entry (no elected primary's): an EPOCH 1000000000 fence the log does not continue (the entry after it, seq 4, has epoch 3)`,
    ]);
  });

  it('judged by the log, a continued forged fence counts; the garbage is reported', async () => {
    const { store: log, garbage } = store();
    const skipped: SkippedItem[] = [];
    const entries = await readLog(opLogSource(createMemoryOpLog(log)), {
      onSkipped: (item) => skipped.push(item),
    });
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(report(skipped)).toEqual([
      `bad entry on stream message ${garbage} (seq unreadable): stream message: garbled: not a batch`,
    ]);
  });

  it('asked of an election check, the forged fence and its entry are foreign, asked once', async () => {
    const { store: log, garbage, forged } = store();
    const skipped: SkippedItem[] = [];
    const asked: string[] = [];
    const entries = await readLog(opLogSource(createMemoryOpLog(log)), {
      elected: (claim) => {
        asked.push(`${claim.epoch}:${claim.nodeId}`);
        return Promise.resolve(claim.nodeId !== 'intruder');
      },
      onSkipped: (item) => skipped.push(item),
    });
    expect(entries.map((e) => e.seq)).toEqual([1, 2]);
    expect(asked).toEqual(['3:n1', '1000000000:intruder']);
    expect(report(skipped)).toEqual([
      `bad entry on stream message ${garbage} (seq unreadable): stream message: garbled: not a batch`,
      `foreign entry at seq 3 (stream message ${forged}): foreign entry (no elected primary's): an EPOCH 1000000000 fence of intruder, who was not elected at that epoch`,
      `foreign entry at seq 4 (stream message ${forged}): foreign entry (no elected primary's): stamped with epoch 1000000000, not the current epoch 3`,
    ]);
  });
});
