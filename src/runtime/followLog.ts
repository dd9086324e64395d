import type { MasterNodeEvent } from '../../machines/masterNode.machine.ts';
import { CodecError } from '../domain/codec.ts';
import { FoldError } from '../domain/fold.ts';
import type { TimerHandle } from '../ports/clock.ts';
import { NotRetainedError, type LogBatch, type LogFollower } from '../ports/opLog.ts';
import type { CommittedStore } from './committedStore.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from './nodeRuntimeConfig.ts';

/** Says that stream message `batch.streamSeq` was passed over, and why. */
export function warnSkipped(logger: NodeRuntimeDeps['logger'], batch: LogBatch): void {
  logger.warn(
    { event: 'logMessageSkipped', streamSeq: batch.streamSeq, why: batch.undecodable },
    `stream message ${batch.streamSeq} is not a batch of entries; skipped`,
  );
}

/**
 * The `followLog` actor: folds the log's entries after `store.appliedSeq` into `store` as they
 * come, reports progress (`oplog.progress`) every `progressIntervalMs`, retries a broken
 * subscription after `retryDelayMs`, and sends `oplog.needsSync` when the log cannot be
 * followed from where the store is. A follower that delivers nothing for `followStallMs` while
 * the log holds entries the store has not applied (a consumer the server forgot, e.g. after a
 * restart) is dropped and replaced at once. A stream message that is no batch of entries is
 * reported and passed over. Returns its closer.
 */
export function followLog(
  deps: Pick<NodeRuntimeDeps, 'opLog' | 'clock' | 'logger'>,
  config: Pick<NodeRuntimeConfig, 'progressIntervalMs' | 'retryDelayMs' | 'followStallMs'>,
  store: CommittedStore,
  sendBack: (event: MasterNodeEvent) => void,
): () => void {
  const { opLog, clock, logger } = deps;
  let stopped = false;
  let follower: LogFollower | undefined;
  let logLastSeq = 0;
  let tickTimer: TimerHandle | undefined;
  let retryTimer: TimerHandle | undefined;
  /** When the current follower was opened or last delivered (monotonic). */
  let deliveredAt = clock.monotonicNow();
  /** The watchdog closed the follower: follow again without the retry wait. */
  let replaced = false;
  let boundsFailing = false;
  const report = (): void => {
    sendBack({ type: 'oplog.progress', appliedSeq: store.appliedSeq, logLastSeq });
  };
  const watch = (lastSeq: number): void => {
    const idleMs = clock.monotonicNow() - deliveredAt;
    if (follower === undefined || lastSeq <= store.appliedSeq || idleMs < config.followStallMs) {
      return;
    }
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
        logLastSeq = Math.max(logLastSeq, bounds.lastSeq);
        if (stopped) return;
        report();
        watch(bounds.lastSeq);
      },
      (err: unknown) => {
        if (stopped || boundsFailing) return;
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
        follower = opLog.follow(store.appliedSeq + 1);
        for await (const batch of follower) {
          if (stopped) return;
          deliveredAt = clock.monotonicNow();
          if (store.applyBatch(batch)) warnSkipped(logger, batch);
          logLastSeq = Math.max(logLastSeq, store.appliedSeq);
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
