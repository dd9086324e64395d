/**
 * The metadata domain's values: segments, objects and their replicas, the commands clients
 * send, and the events the primary logs. Everything here is immutable data.
 */

export type ReplicaStatus = 'processing' | 'complete';

/** One copy of an object: `length` bytes at `offset` in segment `segmentId` on node `nodeId`. */
export interface Replica {
  readonly segmentId: string;
  readonly nodeId: string;
  readonly offset: number;
  readonly length: number;
  readonly status: ReplicaStatus;
}

/** An object and where its replicas live. `lastSeq` is the seq of the last event that touched it. */
export interface ObjectRecord {
  readonly key: string;
  readonly size: number;
  readonly replicas: readonly Replica[];
  readonly lastSeq: number;
}

/** A free byte range `[offset, offset + length)` of a segment. */
export interface FreeRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * A mounted segment: the byte range `[base, base + size)` of a storage node's memory that this
 * cluster (or group, see groups.ts) allocates from. `free` lists its unallocated ranges, sorted
 * by offset, never adjacent or overlapping (coalesced); `used = size - sum(free lengths)` = the
 * sum of the lengths of the replicas placed on it.
 */
export interface Segment {
  readonly id: string;
  readonly nodeId: string;
  /**
   * The first byte of the range this state allocates from; absent means 0 (the whole segment
   * from its start, as a cluster of one group mounts it). A group of a cluster of several mounts
   * its own slice of every segment (segmentSlices.ts).
   */
  readonly base?: number;
  readonly size: number;
  readonly used: number;
  readonly free: readonly FreeRange[];
}

/**
 * The objects of one shard, split into small buckets (frozen arrays of records, in insertion
 * order). Internal: read objects with the functions of state.ts.
 */
export type ShardBuckets = readonly (readonly ObjectRecord[])[];

/**
 * Who asked for a logged event: the client session, the request's number in it, and the lowest
 * request number the client still waits for (it will never retry one below). Logged with the
 * event, so every node's session table is the same fold of the log.
 */
export interface RequestOrigin {
  /** 32 lowercase hex digits: a random 128-bit id chosen by the client. */
  readonly sessionId: string;
  /** 1, 2, 3, ... per session; a retry carries the number of the call it retries. */
  readonly requestNo: number;
  /** The lowest request number of the session still waiting for an answer; <= requestNo. */
  readonly oldestPending: number;
}

/** The result of one applied request, kept so a retry gets it again (not applied twice). */
export interface SessionResult {
  readonly requestNo: number;
  /** The seq of the entry that applied it. */
  readonly seq: number;
  /** The op of that entry, and its key (object key or segment id). */
  readonly op: MetadataEvent['op'];
  readonly key: string;
  /** For PUT_START: the placement it chose. */
  readonly replicas?: readonly Replica[];
}

/**
 * One client session in the replicated session table: the results of the requests the client
 * may still retry (request numbers >= `oldestPending`, ascending). Created by the session's
 * first logged request; expires when nothing of it was logged for SESSION_TTL_MS of logged time.
 */
export interface SessionRecord {
  readonly sessionId: string;
  /** Requests below this number are forgotten: a late copy of one is refused, never applied. */
  readonly oldestPending: number;
  /** The seq of the session's last logged request. */
  readonly lastSeq: number;
  /** The logged time (entry ts) of the session's last logged request. */
  readonly lastTs: number;
  readonly results: readonly SessionResult[];
}

/**
 * What verification needs of one shard, kept up to date by every fold (so a primary answers a
 * round without reading the shard's records): the number of records, the sum (mod 2^32) and
 * xor of their `recordVerifyHash`es (checksum.ts), and a seq at or after the last change.
 */
export interface ShardSummary {
  readonly keyCount: number;
  readonly sum: number;
  readonly xor: number;
  /**
   * The seq of the last event that changed the shard, or a later seq: a shard rebuilt from a
   * snapshot or repaired counts as changed at that state's appliedSeq.
   */
  readonly changedSeq: number;
}

/** The session table, in SESSION_BUCKETS frozen buckets (internal: read it with sessions.ts). */
export type SessionBuckets = readonly (readonly SessionRecord[])[];

/**
 * The folded metadata. Frozen (immer): a state can be read while the next is produced.
 * Read objects and segments with the functions of state.ts; the layout is internal.
 */
export interface MetadataState {
  /** Seq of the last folded event (0 for the empty state). */
  readonly appliedSeq: number;
  /** The epoch of the last EPOCH event folded (0 before any). */
  readonly epoch: number;
  /** The node that wrote the last EPOCH event ('' before any). */
  readonly epochNodeId: string;
  readonly objectCount: number;
  /** Sum of the sizes of the mounted segments. */
  readonly capacity: number;
  /** Sum of the used bytes of the mounted segments. */
  readonly used: number;
  readonly segments: ReadonlyMap<string, Segment>;
  /** SHARD_COUNT shards, each BUCKETS_PER_SHARD buckets of records. */
  readonly shards: readonly ShardBuckets[];
  /** The verification summary of each shard (SHARD_COUNT of them, internal). */
  readonly shardSummaries: readonly ShardSummary[];
  /** The client sessions (exactly-once writes): see sessions.ts. */
  readonly sessions: SessionBuckets;
  /** Number of sessions in `sessions`. */
  readonly sessionCount: number;
  /** Logged time: the largest entry `ts` folded so far (0 before any). Never goes back. */
  readonly logTime: number;
  /** The logged time of the last sweep of idle sessions. */
  readonly sessionsSweptAt: number;
}

export type Command =
  | {
      readonly type: 'mountSegment';
      readonly segmentId: string;
      readonly nodeId: string;
      readonly size: number;
      /** The first byte of the range mounted (default 0): see {@link Segment.base}. */
      readonly base?: number;
    }
  | { readonly type: 'unmountSegment'; readonly segmentId: string }
  | {
      readonly type: 'putStart';
      readonly key: string;
      readonly size: number;
      readonly replicaNum: number;
    }
  | { readonly type: 'putEnd'; readonly key: string }
  | { readonly type: 'putRevoke'; readonly key: string }
  | { readonly type: 'remove'; readonly key: string };

export type MetadataEvent =
  | {
      readonly op: 'MOUNT_SEGMENT';
      readonly segmentId: string;
      readonly nodeId: string;
      readonly size: number;
      /** Present only when not 0 (so a mount at 0 logs the same bytes as before slices). */
      readonly base?: number;
    }
  | { readonly op: 'UNMOUNT_SEGMENT'; readonly segmentId: string }
  | {
      readonly op: 'PUT_START';
      readonly key: string;
      readonly size: number;
      readonly replicas: readonly Replica[];
    }
  | { readonly op: 'PUT_END'; readonly key: string }
  | { readonly op: 'PUT_REVOKE'; readonly key: string }
  | { readonly op: 'REMOVE'; readonly key: string }
  | { readonly op: 'EVICTION'; readonly keys: readonly string[] }
  | { readonly op: 'EPOCH'; readonly epoch: number; readonly nodeId: string };

/** An event with its place in the log. */
export interface LoggedEvent {
  readonly seq: number;
  readonly epoch: number;
  readonly ts: number;
  readonly event: MetadataEvent;
  /** The client request that caused it; absent for the primary's own events and old entries. */
  readonly origin?: RequestOrigin;
}
