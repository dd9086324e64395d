import { expect } from 'vitest';
import { summariseRecords } from '../../src/domain/log/checksum.ts';
import { SHARD_COUNT } from '../../src/domain/model/shard.ts';
import { shardRecords } from '../../src/domain/model/state.ts';
import type { MetadataState } from '../../src/domain/model/types.ts';

/**
 * Checks the verification summary the fold keeps for every shard against the shard's records:
 * the same key count, sum and xor as summarised from scratch, and a `changedSeq` at or after
 * every record's lastSeq and at or before the state's appliedSeq.
 */
export function expectSummariesOfRecords(state: MetadataState): void {
  expect(state.shardSummaries).toHaveLength(SHARD_COUNT);
  for (let shardId = 0; shardId < SHARD_COUNT; shardId++) {
    const records = shardRecords(state, shardId);
    const kept = state.shardSummaries[shardId];
    const { keyCount, sum, xor } = summariseRecords(records, 0);
    expect({ shardId, ...kept, changedSeq: 0 }).toEqual({
      shardId,
      keyCount,
      sum,
      xor,
      changedSeq: 0,
    });
    const newest = records.reduce((m, r) => Math.max(m, r.lastSeq), 0);
    expect(kept?.changedSeq).toBeGreaterThanOrEqual(newest);
    expect(kept?.changedSeq).toBeLessThanOrEqual(state.appliedSeq);
  }
}
