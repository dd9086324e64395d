/**
 * Restoring a node's state without a primary (cold start, and full sync when no primary
 * answers): from the newest valid checkpoint the stream continues, else from the whole stream,
 * else failing closed when neither reaches back far enough.
 */
import type { CheckpointInfo, CheckpointStore } from '../../ports/checkpointStore.ts';
import type { LogBounds } from '../../ports/opLog.ts';
import type { Replication } from '../nodeDomain.ts';
import type { NodeStore } from '../state/committedStore.ts';
import type { NodeRuntimeDeps } from '../nodeRuntimeConfig.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';
import type { CheckpointStats } from './checkpointStats.ts';
import { CheckpointReadStalledError, loadCheckpoint } from './loadCheckpoint.ts';

/**
 * The node will not start (or resync) with the state it could get: the stream no longer holds
 * the entries it needs and no checkpoint (and no primary) covers them. Retryable: the node
 * tries again, and an operator can restore a checkpoint meanwhile.
 */
export class FailClosedError extends UnderstudyError {
  override readonly name: string = 'FailClosedError';
  readonly code: string = 'FAIL_CLOSED';
  override readonly retryable = true;
  constructor(
    /** Why, in words an operator can act on. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`failed closed: ${reason}`, options);
  }
}

/**
 * Whether following the stream from entry S+1 after checkpoint `info` misses nothing: the
 * stream holds S+1 (or nothing after S), or it is empty and was last written no later than
 * the message holding S.
 */
export function streamContinues(bounds: LogBounds, info: CheckpointInfo): boolean {
  if (bounds.firstSeq === 0) return bounds.lastStreamSeq <= info.lastStreamSeq;
  return bounds.firstSeq <= info.appliedSeq + 1 && bounds.lastSeq >= info.appliedSeq;
}

/** The stream holds every entry from 1 (or was never written): folding it from 1 loses nothing. */
function streamIsWhole(bounds: LogBounds): boolean {
  return bounds.firstSeq === 1 || (bounds.firstSeq === 0 && bounds.lastStreamSeq === 0);
}

/** How a state was restored without a primary. */
export type RestoredFrom =
  { readonly kind: 'checkpoint'; readonly checkpoint: CheckpointInfo } | { readonly kind: 'log' };

/**
 * Restores `store` from scratch without a primary: from the newest checkpoint the stream
 * continues (each one's chunk CRCs and digest checked; a corrupt one is logged, counted and the
 * next older one tried), else from the empty state when the stream holds every entry from 1.
 * Throws {@link FailClosedError} saying why when neither works; `store` is then unchanged. A
 * domain without `replication` reads no checkpoint.
 */
export async function restoreWithoutPrimary(
  deps: Pick<NodeRuntimeDeps, 'opLog' | 'checkpoints' | 'logger' | 'clock'>,
  store: NodeStore,
  stats: CheckpointStats,
  replication: Pick<Replication<NodeStore['state']>, 'readCheckpoint' | 'counts'> | undefined,
): Promise<RestoredFrom> {
  const { opLog, checkpoints, logger, clock } = deps;
  const bounds = await opLog.bounds();
  const listed =
    checkpoints === undefined || replication === undefined ? [] : await checkpoints.list();
  const skipped: string[] = [];
  for (const info of listed) {
    if (!streamContinues(bounds, info)) {
      skipped.push(`${info.name} (the stream does not continue it)`);
      continue;
    }
    try {
      const state = await loadCheckpoint(
        checkpoints as CheckpointStore,
        info,
        clock,
        (replication as NonNullable<typeof replication>).readCheckpoint,
      );
      const counts = (replication as NonNullable<typeof replication>).counts(state);
      // An emptied stream: its real last sequence is where a writer must fence on.
      const lastStreamSeq = bounds.firstSeq === 0 ? bounds.lastStreamSeq : info.lastStreamSeq;
      store.reset(state, lastStreamSeq);
      stats.loadedFrom = info.name;
      stats.newest ??= info;
      logger.info(
        {
          event: 'checkpointLoaded',
          checkpoint: info.name,
          appliedSeq: info.appliedSeq,
          objects: counts.objects,
          sessions: counts.sessions,
        },
        `state restored from checkpoint ${info.name} at seq ${info.appliedSeq}`,
      );
      return { kind: 'checkpoint', checkpoint: info };
    } catch (err) {
      if (err instanceof CheckpointReadStalledError) {
        skipped.push(`${info.name} (unreadable: ${err.message})`);
        logger.error(
          { event: 'checkpointUnreadable', checkpoint: info.name, err: err.message },
          `checkpoint ${info.name} cannot be read; trying an older one`,
        );
        continue;
      }
      stats.corrupt++;
      stats.lastCorrupt = `${info.name}: ${String(err)}`;
      skipped.push(`${info.name} (corrupt: ${String(err)})`);
      logger.error(
        { event: 'checkpointCorrupt', checkpoint: info.name, err: String(err) },
        `checkpoint ${info.name} is corrupt; trying an older one`,
      );
    }
  }
  if (streamIsWhole(bounds)) {
    store.reset();
    return { kind: 'log' };
  }
  const stream =
    bounds.firstSeq === 0
      ? `the stream holds no entries (${bounds.lastStreamSeq} messages were written, then trimmed)`
      : `the stream starts at entry ${bounds.firstSeq}`;
  const tried =
    listed.length === 0
      ? 'there is no checkpoint'
      : `no checkpoint continues it: ${skipped.join('; ')}`;
  throw new FailClosedError(`${stream} and ${tried}`);
}
