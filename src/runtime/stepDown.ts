import type { CommittedStore } from './committedStore.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from './nodeRuntimeConfig.ts';
import type { PrimaryTerm } from './primaryTerm.ts';
import type { ReadLeases } from './readLeases.ts';
import { waitForStandby } from './waitForStandby.ts';

/**
 * The `stepDown` actor: fails the pipeline's pending writes with `reason`, closes the writer,
 * drops the read leases and resigns the leader key (a failed resign leaves the lease to expire).
 */
export async function stepDown(
  deps: Pick<NodeRuntimeDeps, 'elector' | 'logger'>,
  store: CommittedStore,
  leases: ReadLeases,
  term: PrimaryTerm,
  reason: string,
): Promise<{ appliedSeq: number }> {
  const { elector, logger } = deps;
  term.pipeline?.close(reason);
  term.pipeline = undefined;
  await term.writer?.close();
  term.writer = undefined;
  leases.clear();
  logger.warn({ event: 'fenced', reason, appliedSeq: store.appliedSeq }, 'stepped down');
  // The leader key may still be ours (a missed deadline with a live lease): give it up so
  // another node can take over without waiting for the TTL. Even when etcd cannot be reached
  // the resign stops the keep-alives, so the lease and the key expire within one TTL; a
  // standby takes a new lease when it needs one.
  await elector.resign().catch((err: unknown) => {
    logger.warn({ event: 'resignFailed', err: String(err) }, 'the lease is left to expire');
  });
  return { appliedSeq: store.appliedSeq };
}

/**
 * The `handOver` actor (stop, switchover): lets in-flight writes commit, waits for a caught-up
 * standby (`handoverTo` when named), closes the pipeline and writer and resigns with the
 * hint. A switchover that goes on as a standby (`keepRunning` and `switchoverPending()`)
 * takes a new lease.
 */
export async function handOver(
  deps: Pick<NodeRuntimeDeps, 'elector' | 'clock' | 'logger' | 'probePeer' | 'nodeId'>,
  config: Pick<NodeRuntimeConfig, 'handoverTimeoutMs' | 'maxLagForPromotion'>,
  store: CommittedStore,
  leases: ReadLeases,
  term: PrimaryTerm,
  switchoverPending: () => boolean,
  handoverTo: string | undefined,
  keepRunning: boolean,
): Promise<{ appliedSeq: number }> {
  const { elector, clock, logger } = deps;
  const started = clock.monotonicNow();
  await term.pipeline?.drain();
  const drained = clock.monotonicNow();
  const target = store.appliedSeq;
  await waitForStandby(deps, config, handoverTo, () => target);
  const standbyReady = clock.monotonicNow();
  term.pipeline?.close('handed over');
  term.pipeline = undefined;
  await term.writer?.close();
  term.writer = undefined;
  await elector.resign(handoverTo === undefined ? {} : { handoverTo });
  const resigned = clock.monotonicNow();
  logger.info(
    {
      event: 'handedOver',
      appliedSeq: target,
      handoverTo,
      tookMs: resigned - started,
      // Where the time went: writes in flight, a caught-up standby, closing and resigning.
      drainMs: drained - started,
      standbyWaitMs: standbyReady - drained,
      resignMs: resigned - standbyReady,
    },
    'resigned the leader key',
  );
  // A switchover goes on as a standby: it needs a lease for its member record and campaigns.
  if (keepRunning && switchoverPending()) {
    leases.clear();
    await elector.start().catch((err: unknown) => {
      logger.warn({ event: 'leaseRegrant', err: String(err) }, 'no new lease after handover');
    });
  }
  return { appliedSeq: target };
}
