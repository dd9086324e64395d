import type { MetadataState } from '../../domain/model/types.ts';
import type { ApiListener } from '../../ports/apiTransport.ts';
import { adminHandler } from '../../admin/adminApi.ts';
import { FullSyncSource } from '../../admin/fullSync.ts';
import type { ActorContext } from '../nodeContext.ts';
import { verifyOp } from '../../admin/verification.ts';

/**
 * The primary's admin listener: answers standbys' verification rounds (counted in
 * `verificationStats.answered`) and serves full-sync chunks of `store`. Does nothing without an
 * admin channel. Returns its closer.
 */
export function listenAdmin({
  ctx,
}: {
  ctx: ActorContext<
    'admin' | 'clock' | 'logger' | 'store' | 'verificationStats',
    'maxSyncGap' | 'maxMismatches'
  >;
}): () => void {
  const { admin, clock, logger, store, config, verificationStats: stats } = ctx;
  if (admin === undefined) return () => undefined;
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
