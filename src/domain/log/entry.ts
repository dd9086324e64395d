/**
 * The OpLog entry: one committed event with its position in the cluster's history.
 *
 * `seq` is assigned by the primary, contiguous from 1 for the life of the cluster (an
 * `EPOCH` entry takes a seq like any other). `checksum` is CRC32 of `payload`;
 * `prefixHash` is CRC32 of the first 8 bytes of `key` (UTF-8).
 */
export interface OpLogEntry {
  readonly seq: number;
  readonly epoch: number;
  /** Milliseconds since the Unix epoch, from the primary's clock when it decided. */
  readonly ts: number;
  readonly op: string;
  /** The object key, the segment id for segment ops, or '' for EVICTION and EPOCH. */
  readonly key: string;
  /** The encoded event (see codec.ts). */
  readonly payload: Uint8Array;
  readonly checksum: number;
  readonly prefixHash: number;
}

export const OP_TYPES = [
  'MOUNT_SEGMENT',
  'UNMOUNT_SEGMENT',
  'PUT_START',
  'PUT_END',
  'PUT_REVOKE',
  'REMOVE',
  'EVICTION',
  'EPOCH',
] as const;

export type OpType = (typeof OP_TYPES)[number];
