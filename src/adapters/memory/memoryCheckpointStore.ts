import {
  checkpointName,
  CheckpointMissingError,
  newestFirst,
  type CheckpointDescription,
  type CheckpointInfo,
  type CheckpointStore,
  type StagedCheckpoint,
} from '../../ports/checkpointStore.ts';
import type { Clock } from '../../ports/clock.ts';

interface Stored {
  readonly pieces: readonly Uint8Array[];
}

/**
 * The checkpoint store in memory, for the simulation and unit tests. Shared by the nodes of one
 * simulated cluster, as the NATS bucket is; it survives their restarts.
 */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly #listed = new Map<string, Stored & { readonly info: CheckpointInfo }>();
  readonly #staged = new Map<string, Stored & { readonly stagedAt: number }>();
  /** Names whose reads stall after this many pieces (test only). */
  readonly #stalled = new Map<string, number>();
  /** Read-backs of checkpoints written from now on stall after this many pieces (test only). */
  #stallStagedAfter: number | undefined;
  #next = 0;

  constructor(private readonly clock: Clock) {}

  list(): Promise<CheckpointInfo[]> {
    return Promise.resolve([...this.#listed.values()].map((s) => s.info).sort(newestFirst));
  }

  write(frames: Iterable<Uint8Array>): Promise<StagedCheckpoint> {
    const pieces = [...frames].map((frame) => frame.slice());
    const staging = `tmp.${this.#next++}`;
    this.#staged.set(staging, { pieces, stagedAt: this.clock.monotonicNow() });
    const stored = (): Stored => {
      const staged = this.#staged.get(staging);
      if (staged === undefined) throw new CheckpointMissingError(staging);
      return staged;
    };
    const stallAfter = this.#stallStagedAfter;
    return Promise.resolve({
      read: () =>
        stallAfter === undefined
          ? iterate(stored().pieces)
          : stalling(stored().pieces.slice(0, stallAfter)),
      publish: (description: CheckpointDescription) => {
        const staged = stored();
        this.#staged.delete(staging);
        const listed: CheckpointInfo = {
          ...description,
          name: checkpointName(description.appliedSeq, description.writer),
          createdAt: this.clock.wallNow(),
          bytes: staged.pieces.reduce((n, p) => n + p.length, 0),
        };
        this.#listed.set(listed.name, { info: listed, pieces: staged.pieces });
        return Promise.resolve(listed);
      },
      discard: () => {
        this.#staged.delete(staging);
        return Promise.resolve();
      },
    });
  }

  read(name: string): AsyncIterable<Uint8Array> {
    const stored = this.#listed.get(name);
    if (stored === undefined) return failing(new CheckpointMissingError(name));
    const stalledAfter = this.#stalled.get(name);
    return stalledAfter === undefined
      ? iterate(stored.pieces)
      : stalling(stored.pieces.slice(0, stalledAfter));
  }

  /**
   * TEST ONLY: reads of `name` deliver its first `pieces` pieces and then nothing, never
   * ending (as an object store read whose stream stops).
   */
  stall(name: string, pieces: number): void {
    if (!this.#listed.has(name)) throw new CheckpointMissingError(name);
    this.#stalled.set(name, pieces);
  }

  /**
   * TEST ONLY: the read-back of every checkpoint written from now on (its staged copy) delivers
   * its first `pieces` pieces and then nothing, never ending; `undefined` ends it.
   */
  stallStaged(pieces: number | undefined): void {
    this.#stallStagedAfter = pieces;
  }

  rebase(name: string, lastStreamSeq: number): Promise<CheckpointInfo> {
    const stored = this.#listed.get(name);
    if (stored === undefined) return Promise.reject(new CheckpointMissingError(name));
    const info: CheckpointInfo = { ...stored.info, lastStreamSeq };
    this.#listed.set(name, { info, pieces: stored.pieces });
    return Promise.resolve(info);
  }

  remove(name: string): Promise<void> {
    this.#listed.delete(name);
    this.#staged.delete(name);
    return Promise.resolve();
  }

  removeLeftovers(olderThanMs: number): Promise<number> {
    let removed = 0;
    for (const [name, staged] of this.#staged) {
      if (this.clock.monotonicNow() - staged.stagedAt < olderThanMs) continue;
      this.#staged.delete(name);
      removed++;
    }
    return Promise.resolve(removed);
  }

  /** TEST ONLY: flips one byte of a listed checkpoint, as a disk fault would. */
  corrupt(name: string, at: number): void {
    const stored = this.#listed.get(name);
    if (stored === undefined) throw new CheckpointMissingError(name);
    let offset = at;
    for (const piece of stored.pieces) {
      if (offset < piece.length) {
        piece[offset] = (piece[offset] as number) ^ 0xff;
        return;
      }
      offset -= piece.length;
    }
  }

  /** Checkpoints written but never published (a writer died between the two). */
  get stagedCount(): number {
    return this.#staged.size;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function* iterate(pieces: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const piece of pieces) {
    await Promise.resolve();
    yield piece;
  }
}

async function* stalling(pieces: readonly Uint8Array[]): AsyncIterable<Uint8Array> {
  yield* iterate(pieces);
  await new Promise<never>(() => undefined);
}

// eslint-disable-next-line require-yield
async function* failing(err: Error): AsyncIterable<Uint8Array> {
  await Promise.resolve();
  throw err;
}
