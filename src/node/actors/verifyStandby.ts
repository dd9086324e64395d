import type { MasterNodeEvent } from '../../../machines/masterNode.machine.ts';
import type { TimerHandle } from '../../ports/clock.ts';
import { AdminClient } from '../../admin/adminApi.ts';
import type { ActorContext } from '../nodeContext.ts';

/**
 * The `verify` actor, a standby's verification: a round against the primary every
 * `verifyIntervalMs`, repairs `ctx.store` in place, counts in `verificationStats`, and sends
 * `verify.done` after each round. Does nothing without an admin channel or a domain without
 * replication. Returns its closer.
 */
export function verifyStandby({
  ctx,
  sendBack,
}: {
  ctx: ActorContext<
    'admin' | 'clock' | 'logger' | 'store' | 'verificationStats' | 'domain',
    'adminTimeoutMs' | 'verifyIntervalMs' | 'verifyFraction' | 'verifyMaxKeysPerShard'
  >;
  sendBack: (event: MasterNodeEvent) => void;
}): () => void {
  const { admin, clock, logger, store, config, verificationStats: stats } = ctx;
  const replication = ctx.domain.replication;
  if (admin === undefined || replication === undefined) return () => undefined;
  const client = new AdminClient(admin.client, config.adminTimeoutMs);
  let stopped = false;
  let timer: TimerHandle | undefined;
  let round = stats.rounds + stats.failedRounds;
  const runRound = async (): Promise<void> => {
    const state = store.state;
    const outcome = await replication.verifyRound(client, state, () => store.state, round, {
      fraction: config.verifyFraction,
      maxKeysPerShard: config.verifyMaxKeysPerShard,
    });
    round++;
    if (stopped) return;
    stats.rounds++;
    stats.keysChecked += outcome.keysChecked;
    stats.mismatches += outcome.mismatches;
    stats.lastStatus = outcome.status;
    stats.lastRoundAt = stats.lastStatusAt = clock.wallNow();
    // The follower may have folded more entries since the repair was computed: a repair of an
    // older state is dropped (the next round finds the mismatch again) rather than undoing them.
    if (outcome.repaired !== undefined && outcome.repaired.appliedSeq === store.appliedSeq) {
      store.reset(outcome.repaired, store.lastStreamSeq);
      stats.repairs++;
    }
    if (outcome.status !== 'OK') {
      logger.warn(
        {
          event: 'verifyMismatch',
          status: outcome.status,
          mismatches: outcome.mismatches,
          repaired: outcome.repaired !== undefined,
          needsFullSync: outcome.needsFullSync,
          forSeq: state.appliedSeq,
          detail: outcome.detail,
        },
        outcome.needsFullSync
          ? 'verification: the state needs a full sync'
          : outcome.status === 'NEED_FULL_SYNC'
            ? 'verification: too far behind to judge; catching up from the log'
            : `verification: repaired ${outcome.mismatches} mismatches`,
      );
    }
    if (outcome.needsFullSync) stats.fullSyncRequests++;
    sendBack({
      type: 'verify.done',
      healthy: !outcome.needsFullSync,
      needsFullSync: outcome.needsFullSync,
    });
  };
  const tick = (): void => {
    if (stopped) return;
    runRound().then(
      () => schedule(),
      (err: unknown) => {
        round++;
        stats.failedRounds++;
        stats.lastStatus = 'FAILED';
        stats.lastStatusAt = clock.wallNow();
        logger.warn({ event: 'verifyFailed', err: String(err) }, 'verification round failed');
        schedule();
      },
    );
  };
  const schedule = (): void => {
    if (!stopped) timer = clock.setTimeout(tick, config.verifyIntervalMs);
  };
  schedule();
  return () => {
    stopped = true;
    timer?.clear();
  };
}
