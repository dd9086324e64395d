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
 * A mounted segment. `free` lists its unallocated ranges, sorted by offset, never adjacent
 * or overlapping (coalesced); `used = size - sum(free lengths)` = the sum of the lengths of the
 * replicas placed on it.
 */
export interface Segment {
  readonly id: string;
  readonly nodeId: string;
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
}

export type Command =
  | {
      readonly type: 'mountSegment';
      readonly segmentId: string;
      readonly nodeId: string;
      readonly size: number;
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
}
