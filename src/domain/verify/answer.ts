/**
 * Verification, the primary's side: the answer to a standby's round.
 *
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
 */
import { prefixHash, summaryDigest } from '../log/checksum.ts';
import { isSessionId } from '../log/eventCodec.ts';
import { SESSION_BUCKETS, sessionBucketOf, shardOf } from '../model/shard.ts';
import { getObject, shardRecords } from '../model/state.ts';
import type { LoggedEvent, MetadataState, ObjectRecord, SessionRecord } from '../model/types.ts';
import { VerifyInputError } from './verifyErrors.ts';
import {
  type VerifyEntry,
  type VerifyRequest,
  type VerifySession,
  byKey,
  checkShardIds,
} from './sampling.ts';
import { checksumOf, sessionChecksumOf } from './digests.ts';

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
