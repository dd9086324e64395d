import { recordVerifyHash } from '../log/checksum.ts';
import type { ObjectRecord, ShardSummary } from '../model/types.ts';

/** A shard's verification summary while a draft changes it in place (copied once per draft). */
export type MutableSummary = { -readonly [K in keyof ShardSummary]: ShardSummary[K] };

/**
 * Takes `removed` out of and puts `added` into a shard's summary (key count, sum and xor of
 * the records' verify hashes, all mod 2^32), and marks it changed at `seq`. The summary stays
 * what `summariseRecords` would compute from the shard's records from scratch.
 */
export function summarise(
  summary: MutableSummary,
  removed: ObjectRecord | undefined,
  added: ObjectRecord | undefined,
  seq: number,
): void {
  let { keyCount, sum, xor } = summary;
  if (removed !== undefined) {
    const hash = recordVerifyHash(removed);
    keyCount--;
    sum = (sum - hash) >>> 0;
    xor = (xor ^ hash) >>> 0;
  }
  if (added !== undefined) {
    const hash = recordVerifyHash(added);
    keyCount++;
    sum = (sum + hash) >>> 0;
    xor = (xor ^ hash) >>> 0;
  }
  summary.keyCount = keyCount;
  summary.sum = sum;
  summary.xor = xor;
  summary.changedSeq = seq;
}
