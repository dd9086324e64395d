import type { MetadataState } from '../../domain/model/types.ts';
import type { ApiListener } from '../../ports/apiTransport.ts';
import { adminHandler } from '../../admin/adminApi.ts';
import type { CommittedStore } from '../state/committedStore.ts';
import { FullSyncSource } from '../../admin/fullSync.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from '../nodeRuntimeConfig.ts';
import { verifyOp, type VerificationStats } from '../../admin/verification.ts';

/**
 * The primary's admin listener: answers standbys' verification rounds (counted in
 * `stats.answered`) and serves full-sync chunks of `store`. Does nothing without an admin
 * channel. Returns its closer.
 */
export function listenAdmin(
  deps: Pick<NodeRuntimeDeps, 'admin' | 'clock' | 'logger'>,
  config: Pick<NodeRuntimeConfig, 'maxSyncGap' | 'maxMismatches'>,
  store: CommittedStore,
  stats: VerificationStats,
): () => void {
  const admin = deps.admin;
  if (admin === undefined) return () => undefined;
  const { clock, logger } = deps;
  const committed = (): { state: MetadataState; lastStreamSeq: number } => ({
    state: store.state,
    lastStreamSeq: store.lastStreamSeq,
  });
  const source = new FullSyncSource({
    committed,
    clock,
    ...(admin.maxReplyBytes === undefined ? {} : { maxPartBytes: admin.maxReplyBytes }),
  });
  const handler = adminHandler({
    verify: verifyOp({
      committed: () => store.state,
      maxGap: config.maxSyncGap,
      maxMismatches: config.maxMismatches,
      onAnswer: (request, response) => {
        stats.answered++;
        if (response.status !== 'OK') {
          logger.warn(
            { event: 'verifyAnswer', status: response.status, forSeq: request.appliedSeq },
            `a standby's verification round: ${response.status}`,
          );
        }
      },
    }),
    ...source.ops(),
  });
  let closed = false;
  let listener: ApiListener | undefined;
  admin.server.listen(handler).then(
    (l) => {
      if (closed) void l.close();
      else listener = l;
    },
    (err: unknown) => logger.warn({ event: 'adminListenFailed', err: String(err) }, 'no admin'),
  );
  return () => {
    closed = true;
    source.clear();
    void listener?.close();
  };
}
