import { enableMapSet, freeze } from 'immer';
import {
  BUCKETS_PER_SHARD,
  bucketOf,
  keyHash,
  SESSION_BUCKETS,
  sessionBucketOf,
  SHARD_COUNT,
} from './shard.ts';
import type {
  MetadataState,
  ObjectRecord,
  Segment,
  SessionRecord,
  ShardBuckets,
  ShardSummary,
} from './types.ts';

enableMapSet();

/**
 * The empty state: nothing folded (appliedSeq 0), epoch 0, no segments, no objects. Frozen.
 *
 * Layout (measured, see bench/fold.bench.ts): SHARD_COUNT shards, each an array of
 * BUCKETS_PER_SHARD small frozen arrays of records, so folding one event copies one small
 * bucket, one shard's bucket array and the shard array instead of a map of every object.
 */
export function emptyState(): MetadataState {
  // The empty state is immutable, so one instance serves every caller.
  empty ??= buildEmptyState();
  return empty;
}

let empty: MetadataState | undefined;

function buildEmptyState(): MetadataState {
  const emptyBucket: readonly ObjectRecord[] = Object.freeze([]);
  const shards: ShardBuckets[] = [];
  for (let s = 0; s < SHARD_COUNT; s++) {
    shards.push(
      Object.freeze(new Array<readonly ObjectRecord[]>(BUCKETS_PER_SHARD).fill(emptyBucket)),
    );
  }
  const noSessions: readonly SessionRecord[] = Object.freeze([]);
  const emptyShard: ShardSummary = Object.freeze({ keyCount: 0, sum: 0, xor: 0, changedSeq: 0 });
  const state: MetadataState = {
    appliedSeq: 0,
    epoch: 0,
    epochNodeId: '',
    objectCount: 0,
    capacity: 0,
    used: 0,
    segments: new Map(),
    shards,
    shardSummaries: Object.freeze(new Array<ShardSummary>(SHARD_COUNT).fill(emptyShard)),
    sessions: Object.freeze(new Array<readonly SessionRecord[]>(SESSION_BUCKETS).fill(noSessions)),
    sessionCount: 0,
    logTime: 0,
    sessionsSweptAt: 0,
  };
  return freeze(state, true);
}

/** The record of `key`, or undefined. */
export function getObject(state: MetadataState, key: string): ObjectRecord | undefined {
  const hash = keyHash(key);
  const bucket = state.shards[hash % SHARD_COUNT]?.[bucketOf(hash)];
  if (bucket === undefined) return undefined;
  for (const record of bucket) if (record.key === key) return record;
  return undefined;
}

/** The mounted segment `segmentId`, or undefined. */
export function getSegment(state: MetadataState, segmentId: string): Segment | undefined {
  return state.segments.get(segmentId);
}

/** Every object, shard by shard (order is deterministic for a given history). */
export function* allObjects(state: MetadataState): Iterable<ObjectRecord> {
  for (const buckets of state.shards) {
    for (const bucket of buckets) {
      for (let i = 0; i < bucket.length; i++) yield bucket[i] as ObjectRecord;
    }
  }
}

/** The objects of shard `shardId` (0..SHARD_COUNT-1); nothing for an out-of-range id. */
export function* shardObjects(state: MetadataState, shardId: number): Iterable<ObjectRecord> {
  const buckets = state.shards[shardId];
  if (buckets === undefined) return;
  for (const bucket of buckets) {
    for (let i = 0; i < bucket.length; i++) yield bucket[i] as ObjectRecord;
  }
}

/** Every mounted segment, in mount order. */
export function allSegments(state: MetadataState): Iterable<Segment> {
  return state.segments.values();
}

/** The records of shard `shardId` as an array (a copy; empty for an out-of-range id). */
export function shardRecords(state: MetadataState, shardId: number): ObjectRecord[] {
  const out: ObjectRecord[] = [];
  for (const bucket of state.shards[shardId] ?? []) {
    for (let i = 0; i < bucket.length; i++) out.push(bucket[i] as ObjectRecord);
  }
  return out;
}

/** Number of objects in shard `shardId`. */
export function shardSize(state: MetadataState, shardId: number): number {
  let n = 0;
  for (const bucket of state.shards[shardId] ?? []) n += bucket.length;
  return n;
}

/** The session `sessionId` of the session table, or undefined. */
export function getSession(state: MetadataState, sessionId: string): SessionRecord | undefined {
  const bucket = state.sessions[sessionBucketOf(sessionId)];
  if (bucket === undefined) return undefined;
  for (const session of bucket) if (session.sessionId === sessionId) return session;
  return undefined;
}

/** Every session of the table, bucket by bucket (deterministic for a given history). */
export function* allSessions(state: MetadataState): Iterable<SessionRecord> {
  for (const bucket of state.sessions) yield* bucket;
}
