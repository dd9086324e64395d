import type { MasterNodeEvent } from '../../machines/masterNode.machine.ts';
import { CodecError } from '../domain/codec.ts';
import { FoldError } from '../domain/fold.ts';
import type { TimerHandle } from '../ports/clock.ts';
import { NotRetainedError, type LogFollower } from '../ports/opLog.ts';
import type { CommittedStore } from './committedStore.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from './nodeRuntimeConfig.ts';

/**
 * The `followLog` actor: folds the log's entries after `store.appliedSeq` into `store` as they
 * come, reports progress (`oplog.progress`) every `progressIntervalMs`, retries a broken
 * subscription after `retryDelayMs`, and sends `oplog.needsSync` when the log cannot be
 * followed from where the store is. Returns its closer.
 */
export function followLog(
  deps: Pick<NodeRuntimeDeps, 'opLog' | 'clock' | 'logger'>,
  config: Pick<NodeRuntimeConfig, 'progressIntervalMs' | 'retryDelayMs'>,
  store: CommittedStore,
  sendBack: (event: MasterNodeEvent) => void,
): () => void {
  const { opLog, clock, logger } = deps;
  let stopped = false;
  let follower: LogFollower | undefined;
  let logLastSeq = 0;
  let timer: TimerHandle | undefined;
  const report = (): void => {
    sendBack({ type: 'oplog.progress', appliedSeq: store.appliedSeq, logLastSeq });
  };
  const tick = (): void => {
    if (stopped) return;
    opLog.bounds().then(
      (bounds) => {
        logLastSeq = Math.max(logLastSeq, bounds.lastSeq);
        if (!stopped) report();
      },
      () => undefined,
    );
    timer = clock.setTimeout(tick, config.progressIntervalMs);
  };
  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      timer = clock.setTimeout(resolve, ms);
    });
  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        follower = opLog.follow(store.appliedSeq + 1);
        for await (const batch of follower) {
          if (stopped) return;
          store.applyEntries(batch.entries, batch.streamSeq);
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
      if (!stopped) await wait(config.retryDelayMs);
    }
  };
  tick();
  void run();
  return () => {
    stopped = true;
    timer?.clear();
    follower?.close();
  };
}
