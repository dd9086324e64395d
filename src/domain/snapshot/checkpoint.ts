/**
 * A checkpoint's bytes: the frozen state at seq S cut into snapshot chunks (snapshot.ts), each in
 * the binary chunk encoding (binaryChunk.ts, a CRC per chunk), framed one after the other as
 * `u32 length (big-endian) | chunk`. The last chunk carries the whole-state digest; every chunk
 * carries S. Pure: the adapters store and fetch the bytes.
 */
import { decodeBinaryChunk, encodeBinaryChunk } from './binaryChunk.ts';
import { SnapshotBuilder } from './snapshotBuilder.ts';
import { SnapshotCodecError, snapshotChunks, SnapshotError } from './chunks.ts';
import type { MetadataState } from '../model/types.ts';
import { UnderstudyError } from '../model/understudyError.ts';

/** Records per checkpoint chunk. */
export const CHECKPOINT_CHUNK_RECORDS = 10_000;

/**
 * The encoded frames of a checkpoint of `state`, one per chunk (a frame is its length then the
 * chunk); `onDigest` gets the state's digest (computed shard by shard as the chunks are cut)
 * once the last frame is made. Reads `state` only (it is frozen): a node may keep folding while
 * this runs.
 */
export function* checkpointFrames(
  state: MetadataState,
  chunkSize = CHECKPOINT_CHUNK_RECORDS,
  onDigest?: (stateDigest: number) => void,
): Generator<Uint8Array, void, undefined> {
  for (const chunk of snapshotChunks(state, chunkSize)) {
    if (chunk.stateDigest !== null) onDigest?.(chunk.stateDigest);
    const bytes = encodeBinaryChunk(chunk);
    const frame = new Uint8Array(4 + bytes.length);
    new DataView(frame.buffer).setUint32(0, bytes.length);
    frame.set(bytes, 4);
    yield frame;
  }
}

export type CheckpointErrorReason = 'truncated' | 'corrupt' | 'mismatch';

/**
 * Checkpoint bytes that do not rebuild the state they claim: cut short (`truncated`), a chunk
 * that fails its CRC or does not fit the others, or a rebuilt digest that differs
 * (`corrupt`), or a state at another seq or with another digest than its metadata says
 * (`mismatch`). Not retryable for these bytes: use another checkpoint.
 */
export class CheckpointError extends UnderstudyError {
  override readonly name = 'CheckpointError';
  readonly code = 'CHECKPOINT_INVALID';
  override readonly retryable = false;
  constructor(
    readonly reason: CheckpointErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${reason}: ${message}`, options);
  }
}

/** What a checkpoint's metadata says its state is; the reader holds the bytes to it. */
export interface CheckpointClaim {
  readonly appliedSeq: number;
  readonly stateDigest: number;
}

/**
 * Rebuilds a checkpoint's state from its bytes, fed in pieces of any size as they arrive.
 * `finish()` returns the frozen state, whose stateDigest was checked against the digest the
 * last chunk carries and, with a claim, against the claim.
 */
export class CheckpointReader {
  readonly #builder: SnapshotBuilder;
  readonly #claim: CheckpointClaim | undefined;
  #pending: Uint8Array = new Uint8Array(0);
  #bytes = 0;

  /**
   * With `keep: false` the reader only checks (see {@link check}): it holds one shard's records
   * at a time instead of a whole state.
   */
  constructor(claim?: CheckpointClaim, options: { readonly keep?: boolean } = {}) {
    this.#claim = claim;
    this.#builder = new SnapshotBuilder(options);
  }

  /** Bytes fed so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds the next piece. Throws {@link CheckpointError} for a chunk that does not decode or fit. */
  add(piece: Uint8Array): void {
    this.#bytes += piece.length;
    let buffer = piece;
    if (this.#pending.length > 0) {
      buffer = new Uint8Array(this.#pending.length + piece.length);
      buffer.set(this.#pending);
      buffer.set(piece, this.#pending.length);
    }
    let at = 0;
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    while (at + 4 <= buffer.length) {
      const length = view.getUint32(at);
      if (at + 4 + length > buffer.length) break;
      this.#chunk(buffer.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    this.#pending = buffer.slice(at);
  }

  #chunk(bytes: Uint8Array): void {
    try {
      const chunk = decodeBinaryChunk(bytes);
      if (this.#claim !== undefined && chunk.appliedSeq !== this.#claim.appliedSeq) {
        throw new CheckpointError(
          'mismatch',
          `chunk ${chunk.index} is at seq ${chunk.appliedSeq}, the metadata says ${this.#claim.appliedSeq}`,
        );
      }
      if (
        this.#claim !== undefined &&
        chunk.stateDigest !== null &&
        chunk.stateDigest !== this.#claim.stateDigest
      ) {
        throw new CheckpointError(
          'mismatch',
          `the state digest is ${chunk.stateDigest}, the metadata says ${this.#claim.stateDigest}`,
        );
      }
      this.#builder.add(chunk);
    } catch (err) {
      if (err instanceof SnapshotCodecError || err instanceof SnapshotError) {
        throw new CheckpointError('corrupt', `chunk ${this.#builder.received}: ${err.message}`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  /** The rebuilt state. Throws {@link CheckpointError}. */
  finish(): MetadataState {
    return this.#end(() => this.#builder.finish());
  }

  /**
   * Checks what {@link finish} checks (every chunk, the digest, the claim) without building the
   * state. Throws {@link CheckpointError}.
   */
  check(): void {
    this.#end(() => this.#builder.check());
  }

  #end<T>(end: () => T): T {
    if (this.#pending.length > 0)
      throw new CheckpointError('truncated', `${this.#pending.length} bytes of a partial chunk`);
    try {
      return end();
    } catch (err) {
      if (!(err instanceof SnapshotError)) throw err;
      const reason = err.reason === 'incomplete' ? 'truncated' : 'corrupt';
      throw new CheckpointError(reason, err.message, { cause: err });
    }
  }
}

/** Checks a checkpoint's whole bytes without building its state (see {@link CheckpointReader}). */
export function checkCheckpoint(pieces: Iterable<Uint8Array>, claim?: CheckpointClaim): void {
  const reader = new CheckpointReader(claim, { keep: false });
  for (const piece of pieces) reader.add(piece);
  reader.check();
}

/** Rebuilds a checkpoint from its whole bytes (see {@link CheckpointReader}). */
export function readCheckpoint(
  pieces: Iterable<Uint8Array>,
  claim?: CheckpointClaim,
): MetadataState {
  const reader = new CheckpointReader(claim);
  for (const piece of pieces) reader.add(piece);
  return reader.finish();
}
