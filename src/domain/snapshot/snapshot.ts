/**
 * Full sync: a frozen state cut into chunks (segments first, in mount order, then objects in
 * the state's own order), rebuilt on the other side into a state with the same stateDigest,
 * plus a compact chunk encoding guarded by a CRC.
 *
 * Chunk encoding (version 1): `"USC1" | u32 crc (big-endian, CRC32 of the body) | body`, where
 * the body is UTF-8 JSON of a compact form: segments as `[id, nodeId, size, used, [[offset,
 * length], ...]]`, objects as `[key, size, lastSeq, [[segmentId, nodeId, offset, length,
 * complete ? 1 : 0], ...]]`.
 */
import CRC32 from 'crc-32';
import { freeze } from 'immer';
import {
  combineDigest,
  digestAndSummarise,
  recordsDigest,
  sessionsDigest,
} from '../log/checksum.ts';
import { OP_TYPES } from '../log/entry.ts';
import {
  BUCKETS_PER_SHARD,
  bucketOf,
  keyHash,
  SESSION_BUCKETS,
  sessionBucketOf,
  SHARD_COUNT,
} from '../model/shard.ts';
import { allSegments, allSessions, shardRecords } from '../model/state.ts';
import type {
  FreeRange,
  MetadataState,
  ObjectRecord,
  Replica,
  Segment,
  SessionRecord,
  SessionResult,
  ShardBuckets,
  ShardSummary,
} from '../model/types.ts';

/** One piece of a full-sync snapshot. */
export interface SnapshotChunk {
  /** 0-based position of this chunk. */
  readonly index: number;
  /** Number of chunks in the snapshot (at least 1). */
  readonly total: number;
  /** The snapshot's state: appliedSeq, epoch and epoch node (same in every chunk). */
  readonly appliedSeq: number;
  readonly epoch: number;
  readonly epochNodeId: string;
  /** The snapshot's logged time and last session sweep (same in every chunk). */
  readonly logTime: number;
  readonly sessionsSweptAt: number;
  /** Segments, in mount order (all of them come before the first session and object). */
  readonly segments: readonly Segment[];
  /** Client sessions (all of them come before the first object). */
  readonly sessions: readonly SessionRecord[];
  readonly objects: readonly ObjectRecord[];
  /** `stateDigest` of the whole state: on the last chunk only, null on the others. */
  readonly stateDigest: number | null;
}

export type SnapshotErrorReason = 'sequence' | 'inconsistent' | 'incomplete' | 'digest';

/**
 * A snapshot that cannot be rebuilt: a chunk out of order or from another snapshot
 * (`sequence`), bad structure such as a segment twice or after objects (`inconsistent`),
 * missing chunks (`incomplete`) or a rebuilt state whose digest differs, which includes any
 * changed, missing or duplicated record (`digest`). Retryable: fetch the snapshot again.
 */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
  readonly retryable = true;
  constructor(
    readonly reason: SnapshotErrorReason,
    /** The chunk index the builder expected next. */
    readonly expectedIndex: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${reason}: ${message}`, options);
  }
}

export type SnapshotCodecErrorReason = 'truncated' | 'checksum' | 'garbled';

/** Bytes that are not an encoded chunk. Not retryable: the bytes are bad. */
export class SnapshotCodecError extends Error {
  override readonly name = 'SnapshotCodecError';
  readonly retryable = false;
  constructor(
    readonly reason: SnapshotCodecErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${reason}: ${message}`, options);
  }
}

/** How many chunks {@link snapshotChunks} cuts `state` into. */
export function snapshotChunkCount(state: MetadataState, chunkSize = 10_000): number {
  const items = state.segments.size + state.sessionCount + state.objectCount;
  return Math.max(1, Math.ceil(items / chunkSize));
}

/**
 * Cuts `state` into chunks of at most `chunkSize` items (segments first, then objects shard by
 * shard in shard order; a chunk may hold the last segments and the first objects). Every chunk
 * carries index/total and the state's appliedSeq/epoch; the last carries `stateDigest(state)`.
 * Reads `state` only; since it is frozen, the primary may keep folding while the chunks are
 * produced.
 */
export function* snapshotChunks(
  state: MetadataState,
  chunkSize = 10_000,
): Generator<SnapshotChunk, void, undefined> {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
    throw new RangeError(`chunkSize must be an integer >= 1, got ${chunkSize}`);
  const segments = [...allSegments(state)];
  const sessions = [...allSessions(state)];
  const total = snapshotChunkCount(state, chunkSize);
  const header = {
    total,
    appliedSeq: state.appliedSeq,
    epoch: state.epoch,
    epochNodeId: state.epochNodeId,
    logTime: state.logTime,
    sessionsSweptAt: state.sessionsSweptAt,
  };
  let index = 0;
  let chunkSegments: Segment[] = [];
  let chunkSessions: SessionRecord[] = [];
  let chunkObjects: ObjectRecord[] = [];
  const full = (): boolean =>
    chunkSegments.length + chunkSessions.length + chunkObjects.length === chunkSize &&
    index < total - 1;
  const cut = (): SnapshotChunk => {
    const chunk = {
      index,
      ...header,
      segments: chunkSegments,
      sessions: chunkSessions,
      objects: chunkObjects,
      stateDigest: null,
    };
    index++;
    chunkSegments = [];
    chunkSessions = [];
    chunkObjects = [];
    return chunk;
  };
  for (const segment of segments) {
    chunkSegments.push(segment);
    if (full()) yield cut();
  }
  for (const session of sessions) {
    chunkSessions.push(session);
    if (full()) yield cut();
  }
  // Shard by shard, each shard's digest computed once its records are cut: the digest the last
  // chunk carries costs the primary a little per chunk instead of all at the end.
  const shardDigests: number[] = [];
  for (let shardId = 0; shardId < SHARD_COUNT; shardId++) {
    const records = shardRecords(state, shardId);
    for (const record of records) {
      chunkObjects.push(record);
      if (full()) yield cut();
    }
    shardDigests.push(recordsDigest(records));
  }
  yield {
    ...cut(),
    stateDigest: combineDigest(shardDigests, segments, sessionsDigest(sessions)),
  };
}

type Bucket = ObjectRecord[];
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
  #expected = 0;
  #header:
    Omit<SnapshotChunk, 'index' | 'segments' | 'sessions' | 'objects' | 'stateDigest'> | undefined;
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
  readonly #shardDigests: number[] = [];
  readonly #shardSummaries: ShardSummary[] = [];

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
      const records: ObjectRecord[] = [];
      for (const bucket of this.#shards[this.#openShard] ?? []) records.push(...bucket);
      // A rebuilt shard counts as changed at the snapshot's seq (verify.ts relies on it).
      const { digest, summary } = digestAndSummarise(records, this.#header?.appliedSeq ?? 0);
      this.#shardDigests.push(digest);
      this.#shardSummaries.push(summary);
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
    for (const segment of chunk.segments) this.#segments.set(segment.id, frozenSegment(segment));
    for (const session of chunk.sessions)
      this.#sessions.set(session.sessionId, frozenSession(session));
    chunk.objects.forEach((record, i) => {
      this.#bucket(hashes[i] as number).push(frozenRecord(record));
    });
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
    const header = this.#header;
    if (header === undefined || this.#expected !== header.total || this.#digest === null) {
      throw new SnapshotError(
        'incomplete',
        this.#expected,
        `got ${this.#expected} of ${header?.total ?? '?'} chunks`,
      );
    }
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
      for (const bucket of buckets) Object.freeze(bucket);
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
    this.#digestUpTo(SHARD_COUNT);
    Object.freeze(this.#shardSummaries);
    freeze(state);
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
    return state;
  }
}

function frozenSegment(segment: Segment): Segment {
  return Object.freeze({
    id: segment.id,
    nodeId: segment.nodeId,
    size: segment.size,
    used: segment.used,
    free: Object.freeze(
      segment.free.map((f) => Object.freeze({ offset: f.offset, length: f.length })),
    ),
  });
}

function frozenSession(session: SessionRecord): SessionRecord {
  return Object.freeze({
    sessionId: session.sessionId,
    oldestPending: session.oldestPending,
    lastSeq: session.lastSeq,
    lastTs: session.lastTs,
    results: Object.freeze(
      session.results.map((r) =>
        Object.freeze(
          r.replicas === undefined
            ? { requestNo: r.requestNo, seq: r.seq, op: r.op, key: r.key }
            : {
                requestNo: r.requestNo,
                seq: r.seq,
                op: r.op,
                key: r.key,
                replicas: Object.freeze(r.replicas.map((x) => Object.freeze({ ...x }))),
              },
        ),
      ),
    ),
  });
}

function frozenRecord(record: ObjectRecord): ObjectRecord {
  // In place: a decoded chunk's records are fresh objects; copying 1M of them again costs.
  if (Object.isFrozen(record)) return record;
  for (const replica of record.replicas) Object.freeze(replica);
  Object.freeze(record.replicas);
  return Object.freeze(record);
}

// ---------------------------------------------------------------------------------------------
// Encoding

const MAGIC = [0x55, 0x53, 0x43, 0x31]; // "USC1"
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type WireSegment = [string, string, number, number, [number, number][]];
type WireReplica = [string, string, number, number, 0 | 1];
type WireObject = [string, number, number, WireReplica[]];
type WireResult = [number, number, number, string, WireReplica[] | null];
type WireSession = [string, number, number, number, WireResult[]];
interface WireChunk {
  i: number;
  n: number;
  s: number;
  e: number;
  en: string;
  t: number;
  w: number;
  g: WireSegment[];
  x: WireSession[];
  o: WireObject[];
  d: number | null;
}

const OP_CODE = new Map<string, number>(OP_TYPES.map((op, i) => [op, i]));

function wireReplica(r: Replica): WireReplica {
  return [r.segmentId, r.nodeId, r.offset, r.length, r.status === 'complete' ? 1 : 0];
}

function replicaOf(rv: unknown): Replica {
  const r = arr(rv, 'replica');
  const status = r[4];
  if (status !== 0 && status !== 1) garbled('replica status');
  return {
    segmentId: str(r[0], 'replica segmentId'),
    nodeId: str(r[1], 'replica nodeId'),
    offset: int(r[2], 'replica offset'),
    length: int(r[3], 'replica length'),
    status: status === 1 ? 'complete' : 'processing',
  };
}

function sessionOf(value: unknown): SessionRecord {
  const s = arr(value, 'session');
  return {
    sessionId: str(s[0], 'sessionId'),
    oldestPending: int(s[1], 'oldestPending'),
    lastSeq: int(s[2], 'session lastSeq'),
    lastTs: int(s[3], 'session lastTs'),
    results: arr(s[4], 'results').map((rv): SessionResult => {
      const r = arr(rv, 'result');
      const op = OP_TYPES[int(r[2], 'result op')];
      if (op === undefined) garbled('result op');
      const result = {
        requestNo: int(r[0], 'requestNo'),
        seq: int(r[1], 'result seq'),
        op,
        key: str(r[3], 'result key'),
      };
      return r[4] === null
        ? result
        : { ...result, replicas: arr(r[4], 'placement').map(replicaOf) };
    }),
  };
}

/** The bytes of `chunk` (see the module doc): compact JSON behind a magic and a CRC32. */
export function encodeChunk(chunk: SnapshotChunk): Uint8Array {
  const wire: WireChunk = {
    i: chunk.index,
    n: chunk.total,
    s: chunk.appliedSeq,
    e: chunk.epoch,
    en: chunk.epochNodeId,
    t: chunk.logTime,
    w: chunk.sessionsSweptAt,
    g: chunk.segments.map((s) => [
      s.id,
      s.nodeId,
      s.size,
      s.used,
      s.free.map((f): [number, number] => [f.offset, f.length]),
    ]),
    x: chunk.sessions.map((s) => [
      s.sessionId,
      s.oldestPending,
      s.lastSeq,
      s.lastTs,
      s.results.map((r): WireResult => [
        r.requestNo,
        r.seq,
        OP_CODE.get(r.op) ?? 0,
        r.key,
        r.replicas === undefined ? null : r.replicas.map(wireReplica),
      ]),
    ]),
    o: chunk.objects.map((o) => [o.key, o.size, o.lastSeq, o.replicas.map(wireReplica)]),
    d: chunk.stateDigest,
  };
  const body = encoder.encode(JSON.stringify(wire));
  const out = new Uint8Array(8 + body.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, CRC32.buf(body, 0) >>> 0);
  out.set(body, 8);
  return out;
}

function garbled(message: string): never {
  throw new SnapshotCodecError('garbled', message);
}

function int(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    garbled(`${what} is not a non-negative integer`);
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') garbled(`${what} is not a string`);
  return value;
}

function arr(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) garbled(`${what} is not an array`);
  return value as unknown[];
}

/**
 * The chunk encoded in `bytes`. Throws {@link SnapshotCodecError}: `truncated` (too short),
 * `checksum` (the CRC does not match: checked before anything is parsed), `garbled` (bad magic
 * or fields).
 */
export function decodeChunk(bytes: Uint8Array): SnapshotChunk {
  if (bytes.length < 8) throw new SnapshotCodecError('truncated', `${bytes.length} bytes`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) garbled('bad magic');
  const body = bytes.subarray(8);
  const crc = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  if (CRC32.buf(body, 0) >>> 0 !== crc)
    throw new SnapshotCodecError('checksum', 'chunk CRC does not match');
  let wire: unknown;
  try {
    wire = JSON.parse(decoder.decode(body));
  } catch (cause) {
    throw new SnapshotCodecError('garbled', 'body is not JSON', { cause });
  }
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) garbled('not an object');
  const w = wire as Record<string, unknown>;
  const segments = arr(w['g'], 'segments').map((value): Segment => {
    const s = arr(value, 'segment');
    return {
      id: str(s[0], 'segment id'),
      nodeId: str(s[1], 'segment nodeId'),
      size: int(s[2], 'segment size'),
      used: int(s[3], 'segment used'),
      free: arr(s[4], 'free ranges').map((f): FreeRange => {
        const range = arr(f, 'free range');
        return { offset: int(range[0], 'free offset'), length: int(range[1], 'free length') };
      }),
    };
  });
  const objects = arr(w['o'], 'objects').map((value): ObjectRecord => {
    const o = arr(value, 'object');
    return {
      key: str(o[0], 'key'),
      size: int(o[1], 'size'),
      lastSeq: int(o[2], 'lastSeq'),
      replicas: arr(o[3], 'replicas').map(replicaOf),
    };
  });
  // Chunks of a node from before sessions carry none.
  const sessions = w['x'] === undefined ? [] : arr(w['x'], 'sessions').map(sessionOf);
  const digest = w['d'];
  return {
    index: int(w['i'], 'index'),
    total: int(w['n'], 'total'),
    appliedSeq: int(w['s'], 'appliedSeq'),
    epoch: int(w['e'], 'epoch'),
    epochNodeId: str(w['en'], 'epochNodeId'),
    logTime: w['t'] === undefined ? 0 : int(w['t'], 'logTime'),
    sessionsSweptAt: w['w'] === undefined ? 0 : int(w['w'], 'sessionsSweptAt'),
    segments,
    sessions,
    objects,
    stateDigest: digest === null ? null : int(digest, 'stateDigest'),
  };
}
