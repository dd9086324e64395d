import type { ApiListener } from '../../ports/apiTransport.ts';
import { adminHandler } from '../../admin/adminApi.ts';
import type { ActorContext } from '../nodeContext.ts';

/**
 * The primary's admin listener: answers standbys' verification rounds (counted in
 * `verificationStats.answered`) and serves full-sync chunks of `store`, by the domain's
 * replication. Does nothing without an admin channel or a domain without replication. Returns its
 * closer.
 */
export function listenAdmin({
  ctx,
}: {
  ctx: ActorContext<
    'admin' | 'clock' | 'logger' | 'store' | 'verificationStats' | 'domain',
    'maxSyncGap' | 'maxMismatches'
  >;
}): () => void {
  const { admin, clock, logger, store, config, verificationStats: stats } = ctx;
  const replication = ctx.domain.replication;
  if (admin === undefined || replication === undefined) return () => undefined;
  const source = replication.adminOps({
    committed: () => ({ state: store.state, lastStreamSeq: store.lastStreamSeq }),
    clock,
    ...(admin.maxReplyBytes === undefined ? {} : { maxPartBytes: admin.maxReplyBytes }),
    maxGap: config.maxSyncGap,
    maxMismatches: config.maxMismatches,
    onAnswer: (forSeq, status) => {
      stats.answered++;
      if (status !== 'OK') {
        logger.warn(
          { event: 'verifyAnswer', status, forSeq },
          `a standby's verification round: ${status}`,
        );
      }
    },
  });
  const handler = adminHandler(source.ops);
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
