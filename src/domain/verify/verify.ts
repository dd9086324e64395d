/**
 * Verification and repair: a standby samples shards of its folded state and asks the primary
 * whether they agree; the primary answers with the records to fix; the standby applies them.
 *
 * The rules the primary follows (no false mismatch when writes interleave with verification):
 *
 * A standby at seq S that folded the log faithfully holds exactly the primary's state at S.
 * The primary is at P >= S and only has its state at P. For a key `k` it can judge:
 *
 * 1. `k` present on the primary with `lastSeq <= S`: nothing touched it in (S, P] (any event
 *    that touches an object sets its lastSeq, and a re-created key gets a new one), so the
 *    standby must hold it exactly. A different checksum, or a missing key, is a mismatch.
 * 2. `k` present with `lastSeq > S`: changed after the standby's seq; skipped.
 * 3. `k` absent on the primary but held by the standby: it may have been removed in (S, P]
 *    (REMOVE, PUT_REVOKE, EVICTION, or dropped by UNMOUNT_SEGMENT). The primary judges it extra
 *    only when it knows every key removed in (S, P]: when S = P, or when it was given the events
 *    (S, P] (`recentEvents`) and none of them is an UNMOUNT_SEGMENT (which drops keys it does
 *    not name). Otherwise the key is skipped.
 *
 * Per sampled shard. A shard is *quiet* when the primary knows every removal in (S, P] (as in
 * rule 3), none of them is in this shard, and nothing changed the shard after S (the summary
 * the fold keeps per shard, `changedSeq`): a quiet shard is the same at S and at P, so its
 * digest ({@link shardVerifyDigest}) must equal the standby's. The primary reads that digest
 * from the summary; the standby computes it from its records (so a corrupted record shows).
 * - Quiet, equal digests: OK, without looking at the keys.
 * - Quiet, digests differ, the standby sent only a sample of the shard (it holds more than
 *   `maxKeysPerShard` keys): the primary sends the whole shard (a shard reset).
 * - Otherwise the sent keys are judged by rules 1-3; when the standby sent every key of the
 *   shard (its key count equals the entries it sent) the primary's keys of rule 1 that it did
 *   not send are missing. A shard that is neither quiet nor sent whole is judged only by its
 *   sampled keys and counted in `shardsUnjudged`; later rounds judge it again.
 *
 * Everything here is pure: no I/O, no clock.
 */
import { freeze, produce } from 'immer';
import CRC32 from 'crc-32';
import {
  objectChecksum,
  prefixHash,
  sessionChecksum,
  summariseRecords,
  summaryDigest,
} from '../log/checksum.ts';
import { isSessionId } from '../log/eventCodec.ts';
import {
  bucketOf,
  keyHash,
  SESSION_BUCKETS,
  sessionBucketOf,
  SHARD_COUNT,
  shardOf,
} from '../model/shard.ts';
import { allObjects, getObject, getSession, shardRecords } from '../model/state.ts';
import type {
  FreeRange,
  LoggedEvent,
  MetadataState,
  ObjectRecord,
  Segment,
  SessionRecord,
  ShardBuckets,
} from '../model/types.ts';

/** A bad argument or a malformed verification request: names the field and the limit. */
export class VerifyInputError extends Error {
  override readonly name = 'VerifyInputError';
  readonly retryable = false;
  constructor(
    readonly field: string,
    readonly limit: string | number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`invalid ${field}: ${message} (limit ${limit})`, options);
  }
}

/**
 * Corrections that cannot be applied consistently (a replica on a segment the standby does not
 * have, overlapping ranges, a record newer than the verified state). The standby's state is
 * beyond repair in place: it needs a full sync. Nothing was changed.
 */
export class RepairError extends Error {
  override readonly name = 'RepairError';
  readonly retryable = false;
  constructor(
    /** The key whose correction failed, when one did. */
    readonly key: string | undefined,
    /** The segment that could not be made consistent, when one could not. */
    readonly segmentId: string | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling (standby side)

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

function byKey(a: ObjectRecord, b: ObjectRecord): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function checkShardIds(shardIds: readonly number[]): number[] {
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

// ---------------------------------------------------------------------------------------------
// Shard summaries, memoised per (immutable) shard

interface ShardMemo {
  readonly keyCount: number;
  /** Computed on first use. */
  digest: number | undefined;
}

/** The same for one bucket: `sum` and `xor` of its records' hashes, on first use. */
interface BucketSummary {
  sum: number | undefined;
  xor: number;
}

// Shards, buckets and records are frozen and replaced on change: whatever is memoised by their
// identity never goes stale. A shard that changed since its last round costs the primary only
// its changed buckets, and those only their changed records' hashes (measured at 1M objects,
// one record removed in each of the 103 sampled shards: answerVerify 11-24 ms with bucket
// summaries, 110-120 ms with record checksums memoised only, 300-320 ms with no memo).
const summaries = new WeakMap<ShardBuckets, ShardMemo>();
const bucketSummaries = new WeakMap<readonly ObjectRecord[], BucketSummary>();
const checksums = new WeakMap<ObjectRecord, number>();
const sessionChecksums = new WeakMap<SessionRecord, number>();

/** `sessionChecksum(session)`, memoised per frozen session record. */
function sessionChecksumOf(session: SessionRecord): number {
  const cached = sessionChecksums.get(session);
  if (cached !== undefined) return cached;
  const checksum = sessionChecksum(session);
  if (Object.isFrozen(session)) sessionChecksums.set(session, checksum);
  return checksum;
}

/** `objectChecksum(record)`, memoised per frozen record. */
function checksumOf(record: ObjectRecord): number {
  const cached = checksums.get(record);
  if (cached !== undefined) return cached;
  const checksum = objectChecksum(record);
  if (Object.isFrozen(record)) checksums.set(record, checksum);
  return checksum;
}

function bucketSummary(bucket: readonly ObjectRecord[]): BucketSummary {
  const cached = bucketSummaries.get(bucket);
  if (cached !== undefined) return cached;
  const summary: BucketSummary = { sum: undefined, xor: 0 };
  if (Object.isFrozen(bucket)) bucketSummaries.set(bucket, summary);
  return summary;
}

function shardSummary(state: MetadataState, shardId: number): ShardMemo {
  const buckets = state.shards[shardId];
  if (buckets === undefined) return { digest: 0, keyCount: 0 };
  const cached = summaries.get(buckets);
  if (cached !== undefined) return cached;
  let keyCount = 0;
  for (const bucket of buckets) keyCount += bucket.length;
  const summary: ShardMemo = { keyCount, digest: undefined };
  if (Object.isFrozen(buckets)) summaries.set(buckets, summary);
  return summary;
}

function digestOf(state: MetadataState, shardId: number, summary: ShardMemo): number {
  if (summary.digest !== undefined) return summary.digest;
  let sum = 0;
  let xor = 0;
  for (const bucket of state.shards[shardId] ?? []) {
    if (bucket.length === 0) continue;
    const part = bucketSummary(bucket);
    if (part.sum === undefined) {
      let bucketSum = 0;
      for (const record of bucket) {
        const hash = CRC32.str(record.key, checksumOf(record)) >>> 0; // recordVerifyHash
        bucketSum = (bucketSum + hash) >>> 0;
        part.xor = (part.xor ^ hash) >>> 0;
      }
      part.sum = bucketSum;
    }
    sum = (sum + part.sum) >>> 0;
    xor = (xor ^ part.xor) >>> 0;
  }
  const digest = summaryDigest({ keyCount: summary.keyCount, sum, xor, changedSeq: 0 });
  summary.digest = digest;
  return digest;
}

/**
 * The verification digest of a shard: a function of its records' keys and `objectChecksum`s
 * only (not of their order, lastSeq or leases), so two nodes holding the same shard agree on it;
 * 0 for an empty shard. Memoised per immutable shard, bucket and record, so a primary
 * recomputes it only for shards that changed, and there only for the buckets and records that
 * changed.
 */
export function shardVerifyDigest(state: MetadataState, shardId: number): number {
  return digestOf(state, shardId, shardSummary(state, shardId));
}

// ---------------------------------------------------------------------------------------------
// Answering (primary side)

/** The correct record of `key`, or null: the standby should not have `key`. */
export interface Correction {
  readonly key: string;
  readonly record: ObjectRecord | null;
}

/** The correct record of a session, or null: the standby should not have it. */
export interface SessionCorrection {
  readonly sessionId: string;
  readonly record: SessionRecord | null;
}

/** The whole correct content of a shard: the standby replaces its shard with these records. */
export interface ShardReset {
  readonly shardId: number;
  readonly records: readonly ObjectRecord[];
}

export type NeedFullSyncReason = 'gap' | 'mismatches' | 'epoch';

/** The primary's answer. `forSeq` is the request's appliedSeq. JSON-serialisable. */
export type VerifyResponse =
  | {
      readonly status: 'OK';
      readonly forSeq: number;
      /** Sampled keys compared (keys changed after forSeq are not counted). */
      readonly keysChecked: number;
      /** Sampled shards the primary could only judge by their sampled keys (see module doc). */
      readonly shardsUnjudged: number;
    }
  | {
      readonly status: 'MISMATCH';
      readonly forSeq: number;
      readonly keysChecked: number;
      readonly shardsUnjudged: number;
      readonly corrections: readonly Correction[];
      readonly shardResets: readonly ShardReset[];
      /** Sessions of the sampled session buckets that differ (absent: none). */
      readonly sessionCorrections?: readonly SessionCorrection[];
    }
  | {
      readonly status: 'NEED_FULL_SYNC';
      readonly forSeq: number;
      readonly reason: NeedFullSyncReason;
      readonly detail: string;
    };

export interface AnswerVerifyOptions {
  /** Largest `primary.appliedSeq - request.appliedSeq` answered in place. Default 1000. */
  readonly maxGap?: number;
  /** Most corrections (keys plus shard resets) answered in place. Default 100. */
  readonly maxMismatches?: number;
  /**
   * The events the primary folded recently (any window; those in (request.appliedSeq,
   * primary.appliedSeq] are used). When they cover that whole range, the primary can tell keys
   * the standby should not have and judge shard digests while writes go on (module doc).
   */
  readonly recentEvents?: readonly LoggedEvent[];
}

/** What the primary knows about removals in (S, P]. */
interface RemovalKnowledge {
  /** True when `removed` names every key removed in (S, P]. */
  readonly exact: boolean;
  readonly removed: ReadonlySet<string>;
  /** Shards holding a key of `removed`. */
  readonly shards: ReadonlySet<number>;
}

/**
 * Why the standby's epoch at S cannot be the log's, or undefined. Folding the log faithfully, a
 * standby at S holds the epoch of the last fence at or before S: the primary's own epoch when
 * no fence lies in (S, P] (known when S = P, or from `recentEvents`), an epoch below the first
 * fence in (S, P] otherwise, and never one above the primary's. A standby that folded a
 * foreign fence (an epoch of no election) fails this whatever its objects say; shard repairs
 * cannot mend an epoch, so it takes a full sync.
 */
export function epochDisagreement(
  primary: MetadataState,
  request: VerifyRequest,
  recentEvents: readonly LoggedEvent[] | undefined,
): string | undefined {
  const { epoch, epochNodeId } = request;
  if (epoch === undefined) return undefined;
  const S = request.appliedSeq;
  const P = primary.appliedSeq;
  const inRange = recentEvents?.filter((e) => e.seq > S && e.seq <= P);
  const known = S === P || (inRange !== undefined && inRange.length === P - S);
  const firstFence = inRange?.find((e) => e.event.op === 'EPOCH');
  const mine = `${epoch} (${epochNodeId ?? '?'})`;
  if (epoch > primary.epoch) {
    return `standby epoch ${mine} is above the primary's ${primary.epoch}`;
  }
  if (firstFence !== undefined && firstFence.event.op === 'EPOCH') {
    return epoch < firstFence.event.epoch
      ? undefined
      : `standby epoch ${mine} at seq ${S} is not below the fence of epoch ${firstFence.event.epoch} at seq ${firstFence.seq}`;
  }
  if (known && (epoch !== primary.epoch || epochNodeId !== primary.epochNodeId)) {
    return `standby epoch ${mine} at seq ${S}, primary's ${primary.epoch} (${primary.epochNodeId}) with no fence after it`;
  }
  return undefined;
}

function removalsSince(
  from: number,
  to: number,
  events: readonly LoggedEvent[] | undefined,
): RemovalKnowledge {
  const removed = new Set<string>();
  if (from === to) return { exact: true, removed, shards: new Set() };
  if (events === undefined) return { exact: false, removed, shards: new Set() };
  const seqs = new Set<number>();
  let unmount = false;
  for (const logged of events) {
    if (logged.seq <= from || logged.seq > to) continue;
    seqs.add(logged.seq);
    const event = logged.event;
    switch (event.op) {
      case 'REMOVE':
      case 'PUT_REVOKE':
        removed.add(event.key);
        break;
      case 'EVICTION':
        for (const key of event.keys) removed.add(key);
        break;
      case 'UNMOUNT_SEGMENT':
        unmount = true;
        break;
      default:
        break;
    }
  }
  const exact = !unmount && seqs.size === to - from;
  return { exact, removed, shards: new Set([...removed].map(shardOf)) };
}

/**
 * The sampled session buckets of a request, each with the standby's sessions (id -> checksum).
 * Throws {@link VerifyInputError} for malformed ones.
 */
function checkSessions(request: VerifyRequest): Map<number, Map<string, number>> {
  const byBucket = new Map<number, Map<string, number>>();
  const buckets: unknown = request.sessionBuckets ?? [];
  const sessions: unknown = request.sessions ?? [];
  if (!Array.isArray(buckets) || !Array.isArray(sessions))
    throw new VerifyInputError('sessions', 'array', 'sessionBuckets and sessions must be arrays');
  for (const b of buckets as unknown[]) {
    if (!Number.isInteger(b) || (b as number) < 0 || (b as number) >= SESSION_BUCKETS)
      throw new VerifyInputError(
        'sessionBuckets',
        `0..${SESSION_BUCKETS - 1}`,
        `bad bucket ${String(b)}`,
      );
    byBucket.set(b as number, new Map());
  }
  for (const entry of sessions as Partial<VerifySession>[]) {
    if (!isSessionId(entry?.sessionId) || typeof entry.checksum !== 'number')
      throw new VerifyInputError('sessions', '{sessionId, checksum}', 'malformed session');
    const bucket = byBucket.get(sessionBucketOf(entry.sessionId));
    if (bucket === undefined)
      throw new VerifyInputError(
        'sessions',
        'sessionBuckets',
        `session ${entry.sessionId} of an unsampled bucket`,
      );
    bucket.set(entry.sessionId, entry.checksum);
  }
  return byBucket;
}

/**
 * The sessions of the sampled buckets that the standby holds wrongly. A session changes only
 * with a logged request of it (its lastSeq) or by expiring, so: a primary session with
 * `lastSeq <= S` must be on the standby exactly; one with a later lastSeq is skipped; a standby
 * session the primary lacks may have expired in (S, P] and is judged extra only when S = P.
 */
function judgeSessions(
  primary: MetadataState,
  S: number,
  byBucket: ReadonlyMap<number, ReadonlyMap<string, number>>,
): SessionCorrection[] {
  const corrections: SessionCorrection[] = [];
  for (const [b, standby] of byBucket) {
    const present = new Set<string>();
    for (const session of primary.sessions[b] ?? []) {
      present.add(session.sessionId);
      if (session.lastSeq > S) continue;
      if (standby.get(session.sessionId) !== sessionChecksumOf(session))
        corrections.push({ sessionId: session.sessionId, record: session });
    }
    if (S !== primary.appliedSeq) continue;
    for (const sessionId of standby.keys()) {
      if (!present.has(sessionId)) corrections.push({ sessionId, record: null });
    }
  }
  return corrections;
}

function checkRequest(request: VerifyRequest): Map<number, VerifyEntry[]> {
  if (typeof request !== 'object' || request === null)
    throw new VerifyInputError('request', 'object', 'must be an object');
  if (!Number.isSafeInteger(request.appliedSeq) || request.appliedSeq < 0)
    throw new VerifyInputError('appliedSeq', 0, 'must be an integer >= 0');
  if (!Array.isArray(request.shardIds) || !Array.isArray(request.entries))
    throw new VerifyInputError('shardIds', 'array', 'shardIds and entries must be arrays');
  const byShard = new Map<number, VerifyEntry[]>();
  for (const id of checkShardIds(request.shardIds)) byShard.set(id, []);
  const entries: readonly Partial<VerifyEntry>[] = request.entries;
  for (const entry of entries) {
    if (
      typeof entry?.key !== 'string' ||
      typeof entry.checksum !== 'number' ||
      typeof entry.prefixHash !== 'number'
    ) {
      throw new VerifyInputError('entries', '{prefixHash, key, checksum}', 'malformed entry');
    }
    if (entry.prefixHash !== prefixHash(entry.key))
      throw new VerifyInputError('entries', 'prefixHash', `wrong prefixHash for ${entry.key}`);
    const list = byShard.get(shardOf(entry.key));
    if (list === undefined)
      throw new VerifyInputError('entries', 'shardIds', `key ${entry.key} of an unsampled shard`);
    list.push({ prefixHash: entry.prefixHash, key: entry.key, checksum: entry.checksum });
  }
  return byShard;
}

/**
 * The primary's answer to `request`, judged against its committed state `primary` by the rules
 * in this module's documentation: never a MISMATCH for a standby whose state is the primary's
 * state at `request.appliedSeq`, whatever happened after it.
 *
 * NEED_FULL_SYNC when the gap `primary.appliedSeq - request.appliedSeq` exceeds `maxGap`, or
 * the corrections (keys plus shard resets) exceed `maxMismatches`. A standby ahead of the
 * primary (its entry was folded before the primary's ack arrived) is answered OK with every
 * shard unjudged. Throws {@link VerifyInputError} for a malformed request. Reads `primary` only.
 */
export function answerVerify(
  primary: MetadataState,
  request: VerifyRequest,
  options: AnswerVerifyOptions = {},
): VerifyResponse {
  const maxGap = options.maxGap ?? 1000;
  const maxMismatches = options.maxMismatches ?? 100;
  const byShard = checkRequest(request);
  const S = request.appliedSeq;
  const P = primary.appliedSeq;
  if (P - S > maxGap) {
    return {
      status: 'NEED_FULL_SYNC',
      forSeq: S,
      reason: 'gap',
      detail: `standby at ${S}, primary at ${P}: gap ${P - S} > ${maxGap}`,
    };
  }
  if (S > P) return { status: 'OK', forSeq: S, keysChecked: 0, shardsUnjudged: byShard.size };
  const epochProblem = epochDisagreement(primary, request, options.recentEvents);
  if (epochProblem !== undefined) {
    return { status: 'NEED_FULL_SYNC', forSeq: S, reason: 'epoch', detail: epochProblem };
  }
  const knowledge = removalsSince(S, P, options.recentEvents);
  const sessionCorrections = judgeSessions(primary, S, checkSessions(request));
  const corrections: Correction[] = [];
  const shardResets: ShardReset[] = [];
  let keysChecked = 0;
  let shardsUnjudged = 0;
  for (const [shardId, entries] of byShard) {
    const keyCount = request.shardKeyCounts?.[shardId];
    const complete = keyCount === entries.length;
    // The summary the fold keeps: no record of the shard is read for a quiet, equal shard.
    const summary = primary.shardSummaries[shardId];
    const quiet =
      summary !== undefined &&
      knowledge.exact &&
      !knowledge.shards.has(shardId) &&
      summary.changedSeq <= S;
    if (quiet) {
      if (summaryDigest(summary) === request.shardDigests?.[shardId]) {
        keysChecked += entries.length;
        continue;
      }
      if (!complete) {
        shardResets.push({ shardId, records: shardRecords(primary, shardId).sort(byKey) });
        continue;
      }
    } else if (!complete) shardsUnjudged++;
    const seen = new Set<string>();
    for (const entry of entries) {
      seen.add(entry.key);
      const record = getObject(primary, entry.key);
      if (record !== undefined) {
        if (record.lastSeq > S) continue;
        keysChecked++;
        if (checksumOf(record) !== entry.checksum) corrections.push({ key: entry.key, record });
      } else if (knowledge.exact && !knowledge.removed.has(entry.key)) {
        keysChecked++;
        corrections.push({ key: entry.key, record: null });
      }
    }
    if (complete) {
      for (const record of shardRecords(primary, shardId)) {
        if (record.lastSeq <= S && !seen.has(record.key))
          corrections.push({ key: record.key, record });
      }
    }
  }
  const mismatches = corrections.length + shardResets.length + sessionCorrections.length;
  if (mismatches > maxMismatches) {
    return {
      status: 'NEED_FULL_SYNC',
      forSeq: S,
      reason: 'mismatches',
      detail: `${mismatches} mismatches > ${maxMismatches}`,
    };
  }
  if (mismatches === 0) return { status: 'OK', forSeq: S, keysChecked, shardsUnjudged };
  return {
    status: 'MISMATCH',
    forSeq: S,
    keysChecked,
    shardsUnjudged,
    corrections,
    shardResets,
    ...(sessionCorrections.length === 0 ? {} : { sessionCorrections }),
  };
}

// ---------------------------------------------------------------------------------------------
// Repair (standby side)

/** The part of a MISMATCH answer a standby applies. */
export interface Repair {
  readonly corrections: readonly Correction[];
  readonly shardResets?: readonly ShardReset[];
  readonly sessionCorrections?: readonly SessionCorrection[];
}

function frozenRecord(record: ObjectRecord): ObjectRecord {
  const replicas = record.replicas.map((r) =>
    Object.freeze({
      segmentId: r.segmentId,
      nodeId: r.nodeId,
      offset: r.offset,
      length: r.length,
      status: r.status,
    }),
  );
  return Object.freeze({
    key: record.key,
    size: record.size,
    replicas: Object.freeze(replicas),
    lastSeq: record.lastSeq,
  });
}

function sameRecord(a: ObjectRecord, b: ObjectRecord): boolean {
  return a.lastSeq === b.lastSeq && objectChecksum(a) === objectChecksum(b);
}

/**
 * Applies the primary's corrections to `state` and returns one new frozen state (`state` is
 * untouched). Afterwards every corrected key, and every reset shard, holds exactly the
 * primary's records, so those shard digests equal the primary's; the segments the changed
 * records occupy get their free ranges and `used` recomputed from the records, so allocation
 * stays consistent (a corrupted record cannot leave a wrong free list behind).
 *
 * `verifiedState` is the state the request was built from, when the standby has folded more
 * since (it must be an ancestor of `state`): a key whose record changed between the two
 * (by reference) is left alone, since the fold already moved it past the verified seq.
 *
 * Throws {@link RepairError}, changing nothing, when a corrected record is newer than
 * `verifiedState`, lies on a segment that is not mounted (or on another node), or the records
 * of a segment overlap: the standby then needs a full sync.
 */
export function applyCorrections(
  state: MetadataState,
  repair: Repair | readonly Correction[],
  verifiedState: MetadataState = state,
): MetadataState {
  const {
    corrections,
    shardResets = [],
    sessionCorrections = [],
  } = Array.isArray(repair) ? { corrections: repair as readonly Correction[] } : (repair as Repair);
  if (verifiedState.appliedSeq > state.appliedSeq)
    throw new RepairError(undefined, undefined, 'the verified state is newer than the state');
  const untouchedSince = (key: string): boolean =>
    verifiedState === state || getObject(state, key) === getObject(verifiedState, key);
  const checkRecord = (key: string, record: ObjectRecord | null): void => {
    if (record === null) return;
    if (record.key !== key)
      throw new RepairError(key, undefined, `correction of ${key} carries ${record.key}`);
    if (record.lastSeq > verifiedState.appliedSeq)
      throw new RepairError(key, undefined, `record of ${key} is newer than the verified state`);
  };
  // key -> wanted record (null: remove)
  const wanted = new Map<string, ObjectRecord | null>();
  for (const { key, record } of corrections) {
    checkRecord(key, record);
    if (untouchedSince(key)) wanted.set(key, record);
  }
  for (const reset of shardResets) {
    if (!Number.isInteger(reset.shardId) || reset.shardId < 0 || reset.shardId >= SHARD_COUNT)
      throw new RepairError(undefined, undefined, `bad shard ${reset.shardId}`);
    const target = new Map<string, ObjectRecord>();
    for (const record of reset.records) {
      checkRecord(record.key, record);
      if (shardOf(record.key) !== reset.shardId)
        throw new RepairError(record.key, undefined, `key not in shard ${reset.shardId}`);
      target.set(record.key, record);
    }
    for (const record of shardRecords(state, reset.shardId)) {
      if (!target.has(record.key) && untouchedSince(record.key)) wanted.set(record.key, null);
    }
    for (const [key, record] of target) if (untouchedSince(key)) wanted.set(key, record);
  }

  const shards = [...state.shards] as (readonly (readonly ObjectRecord[])[])[];
  const shardCopies = new Map<number, (readonly ObjectRecord[])[]>();
  const bucketCopies = new Map<string, ObjectRecord[]>();
  const bucketFor = (key: string): ObjectRecord[] => {
    const hash = keyHash(key);
    const shardId = hash % SHARD_COUNT;
    const b = bucketOf(hash);
    const id = `${shardId}:${b}`;
    const own = bucketCopies.get(id);
    if (own !== undefined) return own;
    let shard = shardCopies.get(shardId);
    if (shard === undefined) {
      shard = [...(shards[shardId] ?? [])];
      shardCopies.set(shardId, shard);
      shards[shardId] = shard;
    }
    const copy = [...(shard[b] ?? [])];
    shard[b] = copy;
    bucketCopies.set(id, copy);
    return copy;
  };

  const affectedSegments = new Set<string>();
  for (const [key, record] of wanted) {
    const current = getObject(state, key);
    if (current === undefined && record === null) continue;
    if (current !== undefined && record !== null && sameRecord(current, record)) continue;
    for (const r of current?.replicas ?? []) affectedSegments.add(r.segmentId);
    for (const r of record?.replicas ?? []) {
      const segment = state.segments.get(r.segmentId);
      if (segment === undefined)
        throw new RepairError(key, r.segmentId, `replica of ${key} on unmounted ${r.segmentId}`);
      if (segment.nodeId !== r.nodeId)
        throw new RepairError(key, r.segmentId, `segment ${r.segmentId} is not on ${r.nodeId}`);
      affectedSegments.add(r.segmentId);
    }
    const bucket = bucketFor(key);
    const at = bucket.findIndex((r) => r.key === key);
    if (record === null) {
      bucket.splice(at, 1);
    } else if (at < 0) {
      bucket.push(frozenRecord(record));
    } else bucket[at] = frozenRecord(record);
  }
  const sessions = repairSessions(state, verifiedState, sessionCorrections);
  if (bucketCopies.size === 0 && sessions === undefined) return state;
  for (const bucket of bucketCopies.values()) Object.freeze(bucket);
  for (const shard of shardCopies.values()) Object.freeze(shard);
  const newShards = Object.freeze(shards) as readonly ShardBuckets[];
  // The summaries of the changed shards, from their records (counted as changed now).
  let shardSummaries = state.shardSummaries;
  if (shardCopies.size > 0) {
    const copy = [...state.shardSummaries];
    for (const [shardId, buckets] of shardCopies)
      copy[shardId] = summariseRecords(buckets.flat(), state.appliedSeq);
    shardSummaries = Object.freeze(copy);
  }

  // Recompute the affected segments from every record that lies on them.
  const ranges = new Map<string, [number, number, string][]>();
  for (const id of affectedSegments) if (state.segments.has(id)) ranges.set(id, []);
  let segments = state.segments;
  if (ranges.size > 0) {
    for (const record of allObjects({ ...state, shards: newShards })) {
      for (const r of record.replicas)
        ranges.get(r.segmentId)?.push([r.offset, r.length, record.key]);
    }
    const copy = new Map(state.segments);
    for (const [id, list] of ranges) {
      const segment = state.segments.get(id) as Segment;
      list.sort((a, b) => a[0] - b[0]);
      const free: FreeRange[] = [];
      let at = 0;
      let segmentUsed = 0;
      for (const [offset, length, key] of list) {
        if (offset < at || offset + length > segment.size)
          throw new RepairError(key, id, `replica of ${key} overlaps or leaves segment ${id}`);
        if (offset > at) free.push(Object.freeze({ offset: at, length: offset - at }));
        at = offset + length;
        segmentUsed += length;
      }
      if (at < segment.size) free.push(Object.freeze({ offset: at, length: segment.size - at }));
      copy.set(id, Object.freeze({ ...segment, used: segmentUsed, free: Object.freeze(free) }));
    }
    segments = freeze(copy);
  }
  // The totals are recounted (cheap: no record is read), so a corrupted count is fixed too.
  let objectCount = 0;
  for (const buckets of newShards) for (const bucket of buckets) objectCount += bucket.length;
  let used = 0;
  let capacity = 0;
  for (const segment of segments.values()) {
    used += segment.used;
    capacity += segment.size;
  }
  return produce(state, (draft) => {
    if (bucketCopies.size > 0) {
      (draft as { shards: unknown }).shards = newShards;
      (draft as { shardSummaries: unknown }).shardSummaries = shardSummaries;
    }
    if (sessions !== undefined) {
      (draft as { sessions: unknown }).sessions = sessions.buckets;
      draft.sessionCount = sessions.count;
    }
    if (segments !== state.segments) (draft as { segments: unknown }).segments = segments;
    if (draft.objectCount !== objectCount) draft.objectCount = objectCount;
    if (draft.used !== used) draft.used = used;
    if (draft.capacity !== capacity) draft.capacity = capacity;
  });
}

/**
 * The session table with `corrections` applied (sessions changed since `verifiedState` are left
 * alone), or undefined when nothing changes. Throws {@link RepairError} for a corrected session
 * newer than the verified state.
 */
function repairSessions(
  state: MetadataState,
  verifiedState: MetadataState,
  corrections: readonly SessionCorrection[],
): { buckets: MetadataState['sessions']; count: number } | undefined {
  if (corrections.length === 0) return undefined;
  const buckets = [...state.sessions];
  const copies = new Map<number, SessionRecord[]>();
  let count = state.sessionCount;
  for (const { sessionId, record } of corrections) {
    if (!isSessionId(sessionId))
      throw new RepairError(undefined, undefined, `bad session id in a correction`);
    if (
      record !== null &&
      (record.sessionId !== sessionId || record.lastSeq > verifiedState.appliedSeq)
    )
      throw new RepairError(
        undefined,
        undefined,
        `correction of session ${sessionId} does not fit`,
      );
    if (getSession(state, sessionId) !== getSession(verifiedState, sessionId)) continue;
    const b = sessionBucketOf(sessionId);
    let bucket = copies.get(b);
    if (bucket === undefined) {
      bucket = [...(buckets[b] ?? [])];
      copies.set(b, bucket);
      buckets[b] = bucket;
    }
    const at = bucket.findIndex((s) => s.sessionId === sessionId);
    if (record === null) {
      if (at >= 0) {
        bucket.splice(at, 1);
        count--;
      }
    } else if (at < 0) {
      bucket.push(frozenSessionRecord(record));
      count++;
    } else bucket[at] = frozenSessionRecord(record);
  }
  if (copies.size === 0) return undefined;
  for (const bucket of copies.values()) Object.freeze(bucket);
  return { buckets: Object.freeze(buckets), count };
}

function frozenSessionRecord(session: SessionRecord): SessionRecord {
  return freeze(structuredClone(session), true);
}
