import { NoRespondersError, TransportTimeoutError } from '../../ports/apiTransport.ts';
import { AdminClient } from '../../admin/adminApi.ts';
import { FailClosedError, restoreWithoutPrimary } from '../checkpoints/restoreWithoutPrimary.ts';
import { checkStreamTail, StreamTailLostError } from '../streamTail.ts';
import type { ActorContext } from '../nodeContext.ts';

/** What a full sync uses of the node's context. */
export type SyncContext = ActorContext<
  | 'admin'
  | 'clock'
  | 'logger'
  | 'opLog'
  | 'checkpoints'
  | 'store'
  | 'verificationStats'
  | 'checkpointStats'
  | 'domain',
  'adminTimeoutMs'
>;

/**
 * Replaces `ctx.store` with the primary's state over the admin channel (counted in
 * `verificationStats`). Resolves false, changing nothing, when no primary answers (or there is
 * no admin channel).
 */
export async function syncFromPrimary({
  signal,
  ctx,
}: {
  signal?: AbortSignal | undefined;
  ctx: SyncContext;
}): Promise<boolean> {
  const { admin, clock, logger, config, store, verificationStats: stats } = ctx;
  const replication = ctx.domain.replication;
  if (admin === undefined || replication === undefined) return false;
  const started = clock.monotonicNow();
  try {
    const result = await replication.fullSync(
      new AdminClient(admin.client, config.adminTimeoutMs),
      signal,
    );
    // Cancelled (the machine left `syncing`): the store is left as it is.
    signal?.throwIfAborted();
    store.reset(result.state, result.lastStreamSeq);
    stats.fullSyncs++;
    stats.lastFullSyncMs = clock.monotonicNow() - started;
    stats.lastFullSyncBytes = result.bytes;
    logger.info(
      {
        event: 'fullSynced',
        appliedSeq: result.state.appliedSeq,
        objects: replication.counts(result.state).objects,
        chunks: result.chunks,
        bytes: result.bytes,
        tookMs: stats.lastFullSyncMs,
      },
      `full sync done at seq ${result.state.appliedSeq}`,
    );
    return true;
  } catch (err) {
    if (!(err instanceof NoRespondersError || err instanceof TransportTimeoutError)) throw err;
    logger.warn({ event: 'fullSyncNoPrimary', err: String(err) }, 'no primary to sync from');
    return false;
  }
}

/** Records (and logs) that the node failed closed, then rethrows; clears the record on success. */
export async function failingClosed<T>(
  ctx: ActorContext<'logger' | 'checkpointStats'>,
  restore: () => Promise<T>,
): Promise<T> {
  const { checkpointStats } = ctx;
  try {
    const result = await restore();
    checkpointStats.failClosed = undefined;
    checkpointStats.streamTailLost = undefined;
    return result;
  } catch (err) {
    if (err instanceof FailClosedError) {
      checkpointStats.failClosed = err.reason;
      const lost = err instanceof StreamTailLostError ? err.loss : undefined;
      checkpointStats.streamTailLost = lost;
      ctx.logger.error(
        {
          event: 'failClosed',
          reason: err.reason,
          ...(lost === undefined ? {} : { streamTailLost: true, ...lost }),
        },
        `refusing to become eligible: ${err.reason}`,
      );
    }
    throw err;
  }
}

/**
 * The `fullSync` actor: replaces `ctx.store` with the primary's state; with no primary to ask,
 * restores it from the newest valid checkpoint the stream continues, or by re-folding a stream
 * that still starts at entry 1. Otherwise, or when a checkpoint is past the stream's end (the
 * stream lost acknowledged entries: {@link StreamTailLostError}), it fails closed ({@link FailClosedError}, retried by
 * the machine): the node never goes on with a partial or empty state. Cancelled (`signal`), it
 * asks for no more chunks and leaves the store as it is.
 */
export async function runFullSync({
  signal,
  ctx,
}: {
  signal?: AbortSignal | undefined;
  ctx: SyncContext;
}): Promise<{ appliedSeq: number }> {
  const { store } = ctx;
  return failingClosed(ctx, async () => {
    if (!(await syncFromPrimary({ signal, ctx }))) {
      signal?.throwIfAborted();
      await checkStreamTail(ctx);
      await restoreWithoutPrimary(ctx, store, ctx.checkpointStats, ctx.domain.replication);
    }
    return { appliedSeq: store.appliedSeq };
  });
}
