/**
 * Sampling, the standby's side of a verification round: which shards a round samples and
 * the request that carries their keys' checksums. Pure.
 */
import { prefixHash } from '../log/checksum.ts';
import { SESSION_BUCKETS, SHARD_COUNT } from '../model/shard.ts';
import { shardRecords } from '../model/state.ts';
import type { MetadataState, ObjectRecord } from '../model/types.ts';
import { VerifyInputError } from './verifyErrors.ts';
import { checksumOf, digestOf, sessionChecksumOf, shardSummary } from './digests.ts';

export interface RoundPlanOptions {
  /** Fraction of the shards sampled per round, (0, 1]. Default 0.1. */
  readonly fraction?: number;
  /** Number of shards. Default SHARD_COUNT (1024). */
  readonly shardCount?: number;
}

/**
 * The shard ids to sample in round `round` (any integer >= 0): `ceil(fraction * shardCount)`
 * consecutive shards, rotating so that rounds `r, r+1, ..., r + ceil(1/fraction) - 1` (10 rounds
 * at the default 0.1) together cover every shard. Sorted ascending, no duplicates.
 */
export function planRound(round: number, options: RoundPlanOptions = {}): number[] {
  const fraction = options.fraction ?? 0.1;
  const shardCount = options.shardCount ?? SHARD_COUNT;
  if (!Number.isSafeInteger(round) || round < 0)
    throw new VerifyInputError('round', 0, 'must be an integer >= 0');
  if (!(fraction > 0 && fraction <= 1))
    throw new VerifyInputError('fraction', '(0, 1]', `got ${fraction}`);
  if (!Number.isSafeInteger(shardCount) || shardCount < 1)
    throw new VerifyInputError('shardCount', 1, 'must be an integer >= 1');
  const perRound = Math.min(shardCount, Math.ceil(fraction * shardCount));
  const roundsPerCycle = Math.ceil(shardCount / perRound);
  const start = (round % roundsPerCycle) * perRound;
  const out: number[] = [];
  for (let s = start; s < Math.min(start + perRound, shardCount); s++) out.push(s);
  return out;
}

/** One sampled key of a standby: its prefix hash, key, and `objectChecksum` of its record. */
export interface VerifyEntry {
  readonly prefixHash: number;
  readonly key: string;
  readonly checksum: number;
}

/** One session of a sampled session bucket: its id and `sessionChecksum`. */
export interface VerifySession {
  readonly sessionId: string;
  readonly checksum: number;
}

/** What a standby sends the primary in one verification round. JSON-serialisable. */
export interface VerifyRequest {
  /** The sampled shards (ascending, no duplicates). */
  readonly shardIds: readonly number[];
  /** The standby's appliedSeq when it sampled. */
  readonly appliedSeq: number;
  /** Up to `maxKeysPerShard` keys of each sampled shard. */
  readonly entries: readonly VerifyEntry[];
  /** shardId -> {@link shardVerifyDigest} of the standby's shard. */
  readonly shardDigests: Readonly<Record<string, number>>;
  /** shardId -> number of keys the standby holds in that shard. */
  readonly shardKeyCounts: Readonly<Record<string, number>>;
  /**
   * The sampled buckets of the session table (`shardId % SESSION_BUCKETS` of the sampled
   * shards, so a cycle of rounds covers the table) and every session the standby holds in them.
   * Absent in requests of nodes from before sessions.
   */
  readonly sessionBuckets?: readonly number[];
  readonly sessions?: readonly VerifySession[];
  /**
   * The standby's epoch and the node its fence names: the epoch history it folded ends there,
   * and a foreign fence folded by mistake shows (see {@link epochDisagreement}). Absent in
   * requests of nodes from before it.
   */
  readonly epoch?: number;
  readonly epochNodeId?: string;
}

export interface VerifyRequestOptions {
  /** Most keys sent per shard (default 100). A shard with at most this many is sent whole. */
  readonly maxKeysPerShard?: number;
  /**
   * Which window of a larger shard's keys (in the shard's order) to send: window
   * `sampleOffset * maxKeysPerShard` (wrapping). Pass the round number to rotate. Default 0.
   */
  readonly sampleOffset?: number;
}

export function byKey(a: ObjectRecord, b: ObjectRecord): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export function checkShardIds(shardIds: readonly number[]): number[] {
  const seen = new Set<number>();
  for (const id of shardIds) {
    if (!Number.isInteger(id) || id < 0 || id >= SHARD_COUNT)
      throw new VerifyInputError('shardIds', `0..${SHARD_COUNT - 1}`, `bad shard ${String(id)}`);
    seen.add(id);
  }
  return [...seen].sort((a, b) => a - b);
}

/**
 * The request a standby sends for `shardIds`: its appliedSeq, every shard's digest and key
 * count, and up to `maxKeysPerShard` keys of each shard with their checksums. Reads `state`
 * only.
 */
export function buildVerifyRequest(
  state: MetadataState,
  shardIds: readonly number[],
  options: VerifyRequestOptions = {},
): VerifyRequest {
  const maxKeys = options.maxKeysPerShard ?? 100;
  const sampleOffset = options.sampleOffset ?? 0;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 0)
    throw new VerifyInputError('maxKeysPerShard', 0, 'must be an integer >= 0');
  if (!Number.isSafeInteger(sampleOffset) || sampleOffset < 0)
    throw new VerifyInputError('sampleOffset', 0, 'must be an integer >= 0');
  const ids = checkShardIds(shardIds);
  const entries: VerifyEntry[] = [];
  const shardDigests: Record<string, number> = {};
  const shardKeyCounts: Record<string, number> = {};
  for (const shardId of ids) {
    const summary = shardSummary(state, shardId);
    shardDigests[shardId] = digestOf(state, shardId, summary);
    shardKeyCounts[shardId] = summary.keyCount;
    // The window moves through the shard's own (deterministic) order: no sort needed.
    const records = shardRecords(state, shardId);
    let sample = records;
    if (records.length > maxKeys) {
      const start = (sampleOffset * maxKeys) % records.length;
      sample = [];
      for (let i = 0; i < maxKeys; i++)
        sample.push(records[(start + i) % records.length] as ObjectRecord);
    }
    for (const record of sample) {
      entries.push({
        prefixHash: prefixHash(record.key),
        key: record.key,
        checksum: checksumOf(record),
      });
    }
  }
  const sessionBuckets = [...new Set(ids.map((id) => id % SESSION_BUCKETS))].sort((a, b) => a - b);
  const sessions: VerifySession[] = [];
  for (const b of sessionBuckets) {
    for (const session of state.sessions[b] ?? []) {
      sessions.push({ sessionId: session.sessionId, checksum: sessionChecksumOf(session) });
    }
  }
  return {
    shardIds: ids,
    appliedSeq: state.appliedSeq,
    entries,
    shardDigests,
    shardKeyCounts,
    sessionBuckets,
    sessions,
    epoch: state.epoch,
    epochNodeId: state.epochNodeId,
  };
}
