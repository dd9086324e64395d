/**
 * Reading a checkpoint back into a state: every chunk CRC and the digest checked, and a read
 * that stops delivering given up after {@link CHECKPOINT_READ_STALL_MS}.
 */
import type { Replication } from '../nodeDomain.ts';
import type { CheckpointInfo, CheckpointStore } from '../../ports/checkpointStore.ts';
import type { Clock, TimerHandle } from '../../ports/clock.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/**
 * How long a checkpoint read may deliver nothing before it is given up (ms): a read of the
 * object store that stops delivering (seen once on nats-server 2.9 at 1M objects: every chunk
 * sent, the read never ended) must not hold a cold start for ever while an older checkpoint
 * would do.
 */
export const CHECKPOINT_READ_STALL_MS = 30_000;

/** A checkpoint read delivered nothing for {@link CHECKPOINT_READ_STALL_MS}. */
export class CheckpointReadStalledError extends UnderstudyError {
  override readonly name = 'CheckpointReadStalledError';
  readonly code = 'CHECKPOINT_READ_STALLED';
  constructor(
    readonly checkpoint: string,
    readonly stalledMs: number,
  ) {
    super(`reading checkpoint ${checkpoint} delivered nothing for ${stalledMs} ms`);
  }
}

/**
 * Reads a listed checkpoint and rebuilds its state, checking every chunk CRC and the digest.
 * Throws {@link CheckpointReadStalledError} when the read stalls for `stallMs`.
 */
export async function loadCheckpoint<S>(
  store: CheckpointStore,
  info: CheckpointInfo,
  clock: Clock,
  read: Replication<S>['readCheckpoint'],
  stallMs = CHECKPOINT_READ_STALL_MS,
): Promise<S> {
  return read(withStallDeadline(store.read(info.name), info.name, clock, stallMs), info);
}

/** `pieces`, failing with {@link CheckpointReadStalledError} when one takes over `stallMs`. */
export async function* withStallDeadline(
  pieces: AsyncIterable<Uint8Array>,
  name: string,
  clock: Clock,
  stallMs: number,
): AsyncIterable<Uint8Array> {
  const iterator = pieces[Symbol.asyncIterator]();
  for (;;) {
    let timer: TimerHandle | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(
        () => reject(new CheckpointReadStalledError(name, stallMs)),
        stallMs,
      );
    });
    let next: IteratorResult<Uint8Array>;
    try {
      next = await Promise.race([iterator.next(), stalled]);
    } catch (err) {
      // The stalled read stays pending; asking it to end is all that can be done.
      if (err instanceof CheckpointReadStalledError)
        void iterator.return?.().catch(() => undefined);
      throw err;
    } finally {
      timer?.clear();
    }
    if (next.done === true) return;
    yield next.value;
  }
}
