/**
 * Rebuilds a state from snapshot chunks, checking their order and consistency, into a state
 * with the same stateDigest as the one they were cut from.
 */
import { freeze } from 'immer';
import { combineDigest, digestAndSummarise, sessionsDigest } from '../log/checksum.ts';
import {
  BUCKETS_PER_SHARD,
  bucketOf,
  keyHash,
  SESSION_BUCKETS,
  sessionBucketOf,
  SHARD_COUNT,
} from '../model/shard.ts';
import { freezeRecord, frozenCopyOfSegment, frozenCopyOfSession } from '../model/freeze.ts';
import type {
  MetadataState,
  ObjectRecord,
  Segment,
  SessionRecord,
  ShardBuckets,
  ShardSummary,
} from '../model/types.ts';
import { type SnapshotChunk, SnapshotError, type SnapshotErrorReason } from './chunks.ts';

type Bucket = ObjectRecord[];
/** What every chunk of one snapshot carries alike. */
type SnapshotHeader = Omit<
  SnapshotChunk,
  'index' | 'segments' | 'sessions' | 'objects' | 'stateDigest'
>;
const EMPTY_BUCKET = Object.freeze([]) as unknown as Bucket;
const EMPTY_SHARD: ShardBuckets = Object.freeze(
  new Array<Bucket>(BUCKETS_PER_SHARD).fill(EMPTY_BUCKET),
);

/**
 * Rebuilds a state from the chunks of one snapshot, added in order (objects shard by shard, as
 * {@link snapshotChunks} cuts them). `finish()` returns a frozen state equal (stateDigest,
 * objects, segments in mount order, appliedSeq, epoch) to the snapshot's source, or throws
 * {@link SnapshotError}.
 */
export class SnapshotBuilder {
  /**
   * Whether the records are kept to build the state: without, each shard's records are let go
   * once its digest is taken, and only {@link check} may end the build (a checkpoint's read-back
   * holds one shard at a time, not a second copy of the state the node holds).
   */
  readonly #keep: boolean;
  #expected = 0;
  #header: SnapshotHeader | undefined;
  #digest: number | null = null;
  readonly #segments = new Map<string, Segment>();
  readonly #sessions = new Map<string, SessionRecord>();
  /** Shards and buckets are created on first use; untouched ones share frozen empties. */
  readonly #shards: (Bucket[] | undefined)[] = new Array<Bucket[] | undefined>(SHARD_COUNT);
  #objectCount = 0;

  /**
   * The shards before this one are complete (objects arrive shard by shard) and their digests
   * are in #shardDigests: computed while the next chunk is on its way, not all in finish().
   */
  #openShard = 0;
  /**
   * The records of the shards not digested yet, by shard, in the order they arrived: a
   * snapshot sends a shard's records in key order, so its digest sorts an array already sorted.
   */
  readonly #arrived = new Map<number, ObjectRecord[]>();
  readonly #shardDigests: number[] = [];
  readonly #shardSummaries: ShardSummary[] = [];

  constructor(options: { readonly keep?: boolean } = {}) {
    this.#keep = options.keep ?? true;
  }

  #bucket(hash: number): Bucket {
    const shardId = hash % SHARD_COUNT;
    let shard = this.#shards[shardId];
    if (shard === undefined) {
      shard = new Array<Bucket>(BUCKETS_PER_SHARD).fill(EMPTY_BUCKET);
      this.#shards[shardId] = shard;
    }
    let bucket = shard[bucketOf(hash)] as Bucket;
    if (bucket === EMPTY_BUCKET) {
      bucket = [];
      shard[bucketOf(hash)] = bucket;
    }
    return bucket;
  }

  /** Digests every shard before `shardId`, which are complete. */
  #digestUpTo(shardId: number): void {
    for (; this.#openShard < shardId; this.#openShard++) {
      const records = this.#arrived.get(this.#openShard) ?? [];
      this.#arrived.delete(this.#openShard);
      // A rebuilt shard counts as changed at the snapshot's seq (verify.ts relies on it).
      const { digest, summary } = digestAndSummarise(records, this.#header?.appliedSeq ?? 0);
      this.#shardDigests.push(digest);
      if (this.#keep) this.#shardSummaries.push(summary);
    }
  }

  /** Chunks added so far. */
  get received(): number {
    return this.#expected;
  }

  /**
   * Adds the next chunk. Throws {@link SnapshotError} (adding nothing) when it does not fit.
   * Takes ownership of the chunk's object records: they are frozen in place, not copied.
   */
  add(chunk: SnapshotChunk): void {
    const expected = this.#expected;
    const fail = (reason: SnapshotErrorReason, message: string): never => {
      throw new SnapshotError(reason, expected, message);
    };
    if (chunk.index !== expected) fail('sequence', `got chunk ${chunk.index}`);
    const header = this.#header;
    if (header === undefined) {
      if (!Number.isSafeInteger(chunk.total) || chunk.total < 1) fail('sequence', 'bad total');
    } else if (
      chunk.total !== header.total ||
      chunk.appliedSeq !== header.appliedSeq ||
      chunk.epoch !== header.epoch ||
      chunk.epochNodeId !== header.epochNodeId ||
      chunk.logTime !== header.logTime ||
      chunk.sessionsSweptAt !== header.sessionsSweptAt
    ) {
      fail('sequence', `chunk ${chunk.index} belongs to another snapshot`);
    }
    if (chunk.index >= chunk.total) fail('sequence', `chunk ${chunk.index} of ${chunk.total}`);
    const last = chunk.index === chunk.total - 1;
    if (last !== (chunk.stateDigest !== null))
      fail('inconsistent', 'the stateDigest belongs on the last chunk, and only there');
    if (chunk.segments.length > 0 && (this.#objectCount > 0 || this.#sessions.size > 0))
      fail('inconsistent', 'a segment after sessions or objects');
    if (chunk.sessions.length > 0 && this.#objectCount > 0)
      fail('inconsistent', 'a session after objects');
    const segmentIds = new Set<string>();
    for (const segment of chunk.segments) {
      if (this.#segments.has(segment.id) || segmentIds.has(segment.id))
        fail('inconsistent', `segment ${segment.id} twice`);
      segmentIds.add(segment.id);
    }
    const sessionIds = new Set<string>();
    for (const session of chunk.sessions) {
      if (this.#sessions.has(session.sessionId) || sessionIds.has(session.sessionId))
        fail('inconsistent', `session ${session.sessionId} twice`);
      sessionIds.add(session.sessionId);
    }
    // A key sent twice is not looked up here (1M lookups): it changes the digest finish() checks.
    const hashes = new Array<number>(chunk.objects.length);
    let shardId = this.#openShard;
    for (let i = 0; i < chunk.objects.length; i++) {
      const hash = keyHash((chunk.objects[i] as ObjectRecord).key);
      if (hash % SHARD_COUNT < shardId) fail('inconsistent', 'objects out of shard order');
      shardId = hash % SHARD_COUNT;
      hashes[i] = hash;
    }
    // Checked: now apply.
    this.#header ??= {
      total: chunk.total,
      appliedSeq: chunk.appliedSeq,
      epoch: chunk.epoch,
      epochNodeId: chunk.epochNodeId,
      logTime: chunk.logTime,
      sessionsSweptAt: chunk.sessionsSweptAt,
    };
    for (const segment of chunk.segments)
      this.#segments.set(segment.id, frozenCopyOfSegment(segment));
    for (const session of chunk.sessions)
      this.#sessions.set(session.sessionId, frozenCopyOfSession(session));
    for (let i = 0; i < chunk.objects.length; i++) {
      const hash = hashes[i] as number;
      const record = this.#keep
        ? freezeRecord(chunk.objects[i] as ObjectRecord)
        : (chunk.objects[i] as ObjectRecord);
      if (this.#keep) this.#bucket(hash).push(record);
      const shard = hash % SHARD_COUNT;
      const arrived = this.#arrived.get(shard);
      if (arrived === undefined) this.#arrived.set(shard, [record]);
      else arrived.push(record);
    }
    this.#objectCount += chunk.objects.length;
    this.#digestUpTo(shardId);
    if (last) this.#digest = chunk.stateDigest;
    this.#expected++;
  }

  /**
   * The rebuilt state. Throws {@link SnapshotError} when chunks are missing or the rebuilt
   * state's digest differs from the one the last chunk carries.
   */
  finish(): MetadataState {
    if (!this.#keep) throw new TypeError('a SnapshotBuilder that keeps no records builds no state');
    const header = this.#complete();
    let capacity = 0;
    let used = 0;
    for (const segment of this.#segments.values()) {
      capacity += segment.size;
      used += segment.used;
    }
    const shards: ShardBuckets[] = [];
    for (let s = 0; s < SHARD_COUNT; s++) {
      const buckets = this.#shards[s];
      if (buckets === undefined) {
        shards.push(EMPTY_SHARD);
        continue;
      }
      // Copied to their length: a bucket grown by push keeps spare slots (half its length and
      // 16 more at each growth; 16 for a bucket of 1), about 25 B of heap per object at 1M.
      for (let b = 0; b < buckets.length; b++) {
        const bucket = buckets[b] as Bucket;
        if (bucket !== EMPTY_BUCKET) buckets[b] = Object.freeze(bucket.slice()) as Bucket;
      }
      shards.push(Object.freeze(buckets));
    }
    const sessionBuckets: SessionRecord[][] = [];
    for (let b = 0; b < SESSION_BUCKETS; b++) sessionBuckets.push([]);
    for (const session of this.#sessions.values())
      sessionBuckets[sessionBucketOf(session.sessionId)]?.push(session);
    const state: MetadataState = {
      appliedSeq: header.appliedSeq,
      epoch: header.epoch,
      epochNodeId: header.epochNodeId,
      objectCount: this.#objectCount,
      capacity,
      used,
      segments: freeze(new Map(this.#segments)),
      shards: Object.freeze(shards),
      shardSummaries: this.#shardSummaries,
      sessions: Object.freeze(sessionBuckets.map((bucket) => Object.freeze(bucket))),
      sessionCount: this.#sessions.size,
      logTime: header.logTime,
      sessionsSweptAt: header.sessionsSweptAt,
    };
    this.#checkDigest();
    Object.freeze(this.#shardSummaries);
    freeze(state);
    return state;
  }

  /**
   * Checks, without building the state, what {@link finish} checks: every chunk came, and the
   * records' digest is the one the last chunk carries. Throws {@link SnapshotError}.
   */
  check(): void {
    this.#complete();
    this.#checkDigest();
  }

  /** The header, when every chunk came; else throws {@link SnapshotError} (`incomplete`). */
  #complete(): SnapshotHeader {
    const header = this.#header;
    if (header === undefined || this.#expected !== header.total || this.#digest === null) {
      throw new SnapshotError(
        'incomplete',
        this.#expected,
        `got ${this.#expected} of ${header?.total ?? '?'} chunks`,
      );
    }
    return header;
  }

  #checkDigest(): void {
    this.#digestUpTo(SHARD_COUNT);
    const digest = combineDigest(
      this.#shardDigests,
      this.#segments.values(),
      sessionsDigest(this.#sessions.values()),
    );
    if (digest !== this.#digest) {
      throw new SnapshotError(
        'digest',
        this.#expected,
        `rebuilt state digest ${digest} differs from the snapshot's ${this.#digest}`,
      );
    }
  }
}
