/** What a checkpoint is, as its metadata says. */
import { UnderstudyError } from '../domain/model/understudyError.ts';
export interface CheckpointInfo {
  /** The store's name for it: `cp.<appliedSeq, 16 digits>.<writer node>`. */
  readonly name: string;
  /** S: the last entry folded into the checkpointed state. */
  readonly appliedSeq: number;
  /** The stream sequence of the message that holds entry S. */
  readonly lastStreamSeq: number;
  /** `stateDigest` of the state. */
  readonly stateDigest: number;
  readonly epoch: number;
  readonly objectCount: number;
  readonly sessionCount: number;
  /** The node that wrote it. */
  readonly writer: string;
  /** Wall time (ms since the Unix epoch) when it was published. */
  readonly createdAt: number;
  /** Bytes stored. */
  readonly bytes: number;
}

/** What a writer says of a checkpoint it is about to store. */
export type CheckpointDescription = Omit<CheckpointInfo, 'name' | 'createdAt' | 'bytes'>;

/**
 * Where a cluster keeps its checkpoints (one bucket per cluster).
 *
 * Promises: a checkpoint is listed only once it is whole and was read back and checked by its
 * writer (`publish`); a reader never sees a partly written one, whatever happens to the writer;
 * `list()` is newest first (by appliedSeq, then name).
 */
export interface CheckpointStore {
  /** The checkpoints there are, newest first. */
  list(): Promise<CheckpointInfo[]>;
  /**
   * Stores `frames` (the encoded checkpoint, pulled one by one) under a name no reader lists;
   * resolves with a handle to read it back and publish it. Rejects when the store fails
   * (nothing is listed).
   */
  write(frames: Iterable<Uint8Array>): Promise<StagedCheckpoint>;
  /** The bytes of a listed checkpoint, in pieces. Rejects with {@link CheckpointMissingError}. */
  read(name: string): AsyncIterable<Uint8Array>;
  /**
   * Records that the stream continues listed checkpoint `name` after stream message
   * `lastStreamSeq` (its `lastStreamSeq` becomes that; its bytes and everything else stay):
   * how an operator who accepts the loss of the stream's tail makes the emptied stream continue
   * the newest checkpoint. Resolves with what `list()` will show; rejects with
   * {@link CheckpointMissingError}.
   */
  rebase(name: string, lastStreamSeq: number): Promise<CheckpointInfo>;
  /** Removes a checkpoint (listed or staged). */
  remove(name: string): Promise<void>;
  /** Removes what writers that died midway left behind; resolves with how many were removed. */
  removeLeftovers(olderThanMs: number): Promise<number>;
  /** Releases connections (the caller's NATS connection stays open). */
  close(): Promise<void>;
}

/** A checkpoint stored but not yet listed. */
export interface StagedCheckpoint {
  /** Its bytes as stored, in pieces. */
  read(): AsyncIterable<Uint8Array>;
  /** Lists it under its final name with `description`; resolves with what `list()` will show. */
  publish(description: CheckpointDescription): Promise<CheckpointInfo>;
  /** Drops it (it failed its check). */
  discard(): Promise<void>;
}

/** The checkpoint is not (or no longer) in the store. */
export class CheckpointMissingError extends UnderstudyError {
  override readonly name = 'CheckpointMissingError';
  readonly code = 'CHECKPOINT_MISSING';
  constructor(
    readonly checkpoint: string,
    options?: ErrorOptions,
  ) {
    super(`no checkpoint ${checkpoint}`, options);
  }
}

/** `cp.<appliedSeq as 16 digits>.<writer>`: names sort like seqs. */
export function checkpointName(appliedSeq: number, writer: string): string {
  return `cp.${String(appliedSeq).padStart(16, '0')}.${writer}`;
}

/** Newest first: by appliedSeq, then by name. */
export function newestFirst(a: CheckpointInfo, b: CheckpointInfo): number {
  return b.appliedSeq - a.appliedSeq || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}
