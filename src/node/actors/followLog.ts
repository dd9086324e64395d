import type { MasterNodeEvent } from '../../../machines/masterNode.machine.ts';
import { CodecError } from '../../domain/log/codec.ts';
import { FoldError } from '../../domain/decider.ts';
import type { Clock, TimerHandle } from '../../ports/clock.ts';
import {
  NotRetainedError,
  type LogBatch,
  type LogBounds,
  type LogFollower,
} from '../../ports/opLog.ts';
import type { BatchOutcome, CommittedStore } from '../state/committedStore.ts';
import type { ActorContext } from '../nodeContext.ts';

/**
 * Folds `batch` into `ctx.store` once the election claims of its `EPOCH` entries are checked, and
 * says what was passed over (once: not again on a redelivery): a message that is no batch of
 * entries, or entries no elected primary wrote.
 */
export async function foldBatch(
  ctx: ActorContext<'logger' | 'checks' | 'store'>,
  batch: LogBatch,
  stopped: () => boolean,
  passedOver?: (batch: LogBatch) => void,
): Promise<BatchOutcome | undefined> {
  const { logger, checks, store } = ctx;
  await checks.settle(batch, store.state, stopped);
  if (stopped()) return undefined;
  const outcome = store.applyBatch(batch, checks.elected);
  if (!outcome.fresh) return outcome;
  if (outcome.undecodable !== undefined) {
    logger.warn(
      { event: 'logMessageSkipped', streamSeq: batch.streamSeq, why: outcome.undecodable },
      `stream message ${batch.streamSeq} is not a batch of entries; skipped`,
    );
    passedOver?.(batch);
  }
  for (const foreign of outcome.foreign) {
    logger.warn(
      { event: 'foreignEntrySkipped', streamSeq: batch.streamSeq, ...foreign },
      `entry ${foreign.seq} (${foreign.op}) of stream message ${batch.streamSeq} is no elected primary's: ${foreign.why}; skipped`,
    );
  }
  return outcome;
}

/**
 * How long (ms, on the node's monotonic clock) a follower folds before it lets the event loop
 * run. A backlog arrives as a run of buffered messages, which the follower would otherwise fold
 * in one chain of microtasks: a standby's loop stalled for 200-520 ms that way (measured, while
 * its GC pauses stayed under 45 ms).
 */
export const FOLD_SLICE_MS = 10;

/**
 * Lets the event loop run (its timers and I/O, once) when a follower has folded for
 * {@link FOLD_SLICE_MS} since it last did. A simulated clock stands still while code runs, so in
 * a simulation it slices only where simulated time passed.
 */
export class FoldSlices {
  #start: number;
  constructor(private readonly clock: Pick<Clock, 'monotonicNow'>) {
    this.#start = clock.monotonicNow();
  }

  async yieldIfDue(): Promise<void> {
    if (this.clock.monotonicNow() - this.#start < FOLD_SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.#start = this.clock.monotonicNow();
  }
}

/**
 * How far the log goes, as far as this node can tell: the last entry's seq while this node has
 * not read the last message (once read, it may be a foreign entry's, of any seq), and at least
 * one entry for every message after the last one this node folded entries from. A message it
 * passed over (signed under another key, an outsider's) is lag until the primary's next message
 * is folded: a node that can read none of the primary's messages falls further behind with each
 * one, however many entries it folded before (a full sync), and never counts as caught up.
 */
export function logEnd(bounds: LogBounds, store: CommittedStore): number {
  const unfolded = Math.max(0, bounds.lastStreamSeq - store.entryStreamSeq);
  const lastEntry = bounds.lastStreamSeq > store.lastStreamSeq ? bounds.lastSeq : 0;
  return Math.max(lastEntry, store.appliedSeq + unfolded);
}

/**
 * The `followLog` actor: folds the log's entries after `store.appliedSeq` into `ctx.store` as they
 * come, reports progress (`oplog.progress`) every `progressIntervalMs`, retries a broken
 * subscription after `retryDelayMs`, and sends `oplog.needsSync` when the log cannot be
 * followed from where the store is. A follower that delivers nothing for `followStallMs` while
 * the log holds entries the store has not applied (a consumer the server forgot, e.g. after a
 * restart) is dropped and replaced at once. A stream message that is no batch of entries, and
 * an entry no elected primary wrote (domain/log/admission.ts), are reported and passed over: the log
 * goes on after them, and they count as lag ({@link logEnd}). While the log's bounds cannot be
 * read, progress says the node is cut off. Returns its closer.
 */
export function followLog({
  ctx,
  sendBack,
}: {
  ctx: ActorContext<
    'opLog' | 'clock' | 'logger' | 'store' | 'checks' | 'keyWatch',
    'progressIntervalMs' | 'retryDelayMs' | 'followStallMs'
  >;
  sendBack: (event: MasterNodeEvent) => void;
}): () => void {
  const { opLog, clock, logger, store, config, keyWatch } = ctx;
  const passedOver = (batch: LogBatch): void => keyWatch.passedOver(batch);
  let stopped = false;
  let follower: LogFollower | undefined;
  let logLastSeq = 0;
  let tickTimer: TimerHandle | undefined;
  let retryTimer: TimerHandle | undefined;
  /** When the current follower was opened or last delivered (monotonic). */
  let deliveredAt = clock.monotonicNow();
  /** The watchdog closed the follower: follow again without the retry wait. */
  let replaced = false;
  /** A batch waits for its election claims to be checked: the follower is not stalled. */
  let settling = false;
  let boundsFailing = false;
  /** Why the log cannot be read now (its bounds fail); undefined while it can. */
  let cutOff: string | undefined;
  const report = (): void => {
    sendBack({
      type: 'oplog.progress',
      appliedSeq: store.appliedSeq,
      logLastSeq,
      ...(cutOff === undefined ? {} : { cutOff }),
    });
  };
  /** Whether the log holds messages after the last one the store folded or passed over. */
  const behind = (bounds: LogBounds): boolean => bounds.lastStreamSeq > store.lastStreamSeq;
  const watch = (bounds: LogBounds): void => {
    const idleMs = clock.monotonicNow() - deliveredAt;
    if (
      follower === undefined ||
      settling ||
      bounds.lastSeq <= store.appliedSeq ||
      !behind(bounds) ||
      idleMs < config.followStallMs
    ) {
      return;
    }
    const lastSeq = bounds.lastSeq;
    logger.warn(
      { event: 'followStalled', appliedSeq: store.appliedSeq, logLastSeq: lastSeq, idleMs },
      'the follower delivers nothing while the log holds more; following again',
    );
    replaced = true;
    follower.close();
  };
  const tick = (): void => {
    if (stopped) return;
    opLog.bounds().then(
      (bounds) => {
        boundsFailing = false;
        cutOff = undefined;
        logLastSeq = logEnd(bounds, store);
        if (stopped) return;
        report();
        watch(bounds);
      },
      (err: unknown) => {
        if (stopped) return;
        // Cut off from the log: how far it goes is unknown, so this node is not caught up.
        cutOff = `cannot read the log: ${String(err)}`;
        report();
        if (boundsFailing) return;
        boundsFailing = true;
        logger.warn({ event: 'logBoundsFailed', err: String(err) }, 'cannot read the log bounds');
      },
    );
    tickTimer = clock.setTimeout(tick, config.progressIntervalMs);
  };
  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      retryTimer = clock.setTimeout(resolve, ms);
    });
  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        replaced = false;
        deliveredAt = clock.monotonicNow();
        follower = opLog.follow(store.appliedSeq + 1, store.followFrom());
        const slices = new FoldSlices(clock);
        for await (const batch of follower) {
          if (stopped) return;
          deliveredAt = clock.monotonicNow();
          settling = true;
          try {
            await foldBatch(ctx, batch, () => stopped, passedOver);
          } finally {
            settling = false;
          }
          deliveredAt = clock.monotonicNow();
          logLastSeq = Math.max(logLastSeq, store.appliedSeq);
          await slices.yieldIfDue();
        }
      } catch (err) {
        if (stopped) return;
        if (
          err instanceof NotRetainedError ||
          err instanceof CodecError ||
          err instanceof FoldError
        ) {
          logger.warn({ event: 'needsSync', err: String(err) }, 'the log cannot be followed');
          sendBack({ type: 'oplog.needsSync', reason: String(err) });
          return;
        }
        logger.warn({ event: 'followRetry', err: String(err) }, 'following failed; retrying');
      }
      if (!stopped && !replaced) await wait(config.retryDelayMs);
    }
  };
  tick();
  void run();
  return () => {
    stopped = true;
    tickTimer?.clear();
    retryTimer?.clear();
    follower?.close();
  };
}
