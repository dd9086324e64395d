/**
 * Repair, the standby's side: applying a MISMATCH answer's corrections, shard resets and
 * session corrections to its state. Pure.
 */
import { freeze, produce } from 'immer';
import { objectChecksum, summariseRecords } from '../log/checksum.ts';
import { isSessionId } from '../log/eventCodec.ts';
import { bucketOf, keyHash, sessionBucketOf, SHARD_COUNT, shardOf } from '../model/shard.ts';
import { allObjects, getObject, getSession, shardRecords } from '../model/state.ts';
import { frozenCopyOfRecord, frozenCopyOfSession } from '../model/freeze.ts';
import type {
  FreeRange,
  MetadataState,
  ObjectRecord,
  Segment,
  SessionRecord,
  ShardBuckets,
} from '../model/types.ts';
import { RepairError } from './verifyErrors.ts';
import type { Correction, SessionCorrection, ShardReset } from './answer.ts';

/** The part of a MISMATCH answer a standby applies. */
export interface Repair {
  readonly corrections: readonly Correction[];
  readonly shardResets?: readonly ShardReset[];
  readonly sessionCorrections?: readonly SessionCorrection[];
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
      bucket.push(frozenCopyOfRecord(record));
    } else bucket[at] = frozenCopyOfRecord(record);
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
      // A segment spans [base, base + size): a group's slice of it (segmentSlices.ts).
      let at = segment.base ?? 0;
      const end = at + segment.size;
      let segmentUsed = 0;
      for (const [offset, length, key] of list) {
        if (offset < at || offset + length > end)
          throw new RepairError(key, id, `replica of ${key} overlaps or leaves segment ${id}`);
        if (offset > at) free.push(Object.freeze({ offset: at, length: offset - at }));
        at = offset + length;
        segmentUsed += length;
      }
      if (at < end) free.push(Object.freeze({ offset: at, length: end - at }));
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
      bucket.push(frozenCopyOfSession(record));
      count++;
    } else bucket[at] = frozenCopyOfSession(record);
  }
  if (copies.size === 0) return undefined;
  for (const bucket of copies.values()) Object.freeze(bucket);
  return { buckets: Object.freeze(buckets), count };
}
