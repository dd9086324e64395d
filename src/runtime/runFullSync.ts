import { NoRespondersError, TransportTimeoutError } from '../ports/apiTransport.ts';
import { AdminClient } from './adminApi.ts';
import type { CommittedStore } from './committedStore.ts';
import { fetchFullSync } from './fullSync.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from './nodeRuntimeConfig.ts';
import type { VerificationStats } from './verification.ts';

/**
 * The `fullSync` actor: replaces `store` with the primary's state over the admin channel
 * (counted in `stats`); with no primary to ask (or no admin channel), re-folds the log from
 * its first entry, which fails (and is retried by the machine) when the stream was trimmed.
 */
export async function runFullSync(
  deps: Pick<NodeRuntimeDeps, 'admin' | 'clock' | 'logger' | 'opLog'>,
  config: Pick<NodeRuntimeConfig, 'adminTimeoutMs'>,
  store: CommittedStore,
  stats: VerificationStats,
): Promise<{ appliedSeq: number }> {
  const { admin, clock, logger } = deps;
  if (admin !== undefined) {
    const started = clock.monotonicNow();
    try {
      const result = await fetchFullSync(new AdminClient(admin.client, config.adminTimeoutMs));
      store.reset(result.state, result.lastStreamSeq);
      stats.fullSyncs++;
      stats.lastFullSyncMs = clock.monotonicNow() - started;
      stats.lastFullSyncBytes = result.bytes;
      logger.info(
        {
          event: 'fullSynced',
          appliedSeq: result.state.appliedSeq,
          objects: result.state.objectCount,
          chunks: result.chunks,
          bytes: result.bytes,
          tookMs: stats.lastFullSyncMs,
        },
        `full sync done at seq ${result.state.appliedSeq}`,
      );
      return { appliedSeq: store.appliedSeq };
    } catch (err) {
      // No primary to sync from: re-folding the log works when it still starts at entry 1.
      if (!(err instanceof NoRespondersError || err instanceof TransportTimeoutError)) throw err;
      logger.warn({ event: 'fullSyncNoPrimary', err: String(err) }, 'no primary to sync from');
    }
  }
  // No primary (or no admin channel): re-fold the log from its first entry; this fails (and
  // is retried) when the stream was trimmed.
  const bounds = await deps.opLog.bounds();
  if (bounds.firstSeq > 1) {
    throw new Error(`the stream starts at ${bounds.firstSeq}; full sync from a primary is needed`);
  }
  store.reset();
  return { appliedSeq: 0 };
}
