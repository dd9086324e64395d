import type { ActorContext } from '../nodeContext.ts';
import { waitForStandby } from './waitForStandby.ts';

/**
 * Closes the term's writer without waiting: its appends in flight settle on their own (a NATS
 * writer's can take the ack timeout plus the read-back window), and nothing waits for them.
 * Their entries, if stored, are in the log the node follows next.
 */
function dropWriter(ctx: ActorContext<'logger' | 'term'>): void {
  const { term } = ctx;
  const writer = term.writer;
  term.writer = undefined;
  writer?.close().catch((err: unknown) => {
    ctx.logger.warn({ event: 'writerCloseFailed', err: String(err) }, 'closing the writer failed');
  });
}

/**
 * The `stepDown` actor: fails the pipeline's pending writes with `reason`, drops the read
 * leases, resigns the leader key (a failed resign leaves the lease to expire) and only then
 * closes the writer, without waiting for its appends in flight.
 */
export async function stepDown({
  input,
  ctx,
}: {
  input: { readonly reason: string };
  ctx: ActorContext<'elector' | 'logger' | 'store' | 'leases' | 'term'>;
}): Promise<{ appliedSeq: number }> {
  const { elector, logger, store, leases, term } = ctx;
  const { reason } = input;
  term.pipeline?.close(reason);
  term.pipeline = undefined;
  leases.clear();
  logger.warn({ event: 'fenced', reason, appliedSeq: store.appliedSeq }, 'stepped down');
  // The leader key may still be ours (a missed deadline with a live lease, a writer that cannot
  // reach the log): give it up first, so another node can take over without waiting for the
  // TTL or for this writer's appends. Even when etcd cannot be reached the resign stops the
  // keep-alives, so the lease and the key expire within one TTL; a standby takes a new lease
  // when it needs one.
  await elector.resign().catch((err: unknown) => {
    logger.warn({ event: 'resignFailed', err: String(err) }, 'the lease is left to expire');
  });
  dropWriter(ctx);
  return { appliedSeq: store.appliedSeq };
}

/**
 * The `handOver` actor (stop, switchover): lets in-flight writes commit, waits for a caught-up
 * standby (`input.target` when named), closes the pipeline, resigns with the hint and closes the
 * writer. A switchover that goes on as a standby (`keepRunning`, and the machine's context still
 * holds the switchover) takes a new lease.
 */
export async function handOver({
  input,
  signal,
  ctx,
}: {
  input: { readonly target: string | undefined; readonly keepRunning: boolean };
  signal?: AbortSignal | undefined;
  ctx: ActorContext<
    | 'elector'
    | 'clock'
    | 'logger'
    | 'probePeer'
    | 'nodeId'
    | 'store'
    | 'leases'
    | 'term'
    | 'machine',
    'handoverTimeoutMs' | 'maxLagForPromotion'
  >;
}): Promise<{ appliedSeq: number }> {
  const { elector, clock, logger, store, leases, term } = ctx;
  const { target: handoverTo, keepRunning } = input;
  const switchoverPending = (): boolean => ctx.machine.context().switchover !== undefined;
  const started = clock.monotonicNow();
  await term.pipeline?.drain();
  const drained = clock.monotonicNow();
  const target = store.appliedSeq;
  await waitForStandby({ input: { target: handoverTo, seq: () => target }, signal, ctx });
  const standbyReady = clock.monotonicNow();
  term.pipeline?.close('handed over');
  term.pipeline = undefined;
  try {
    await elector.resign(handoverTo === undefined ? {} : { handoverTo });
  } finally {
    dropWriter(ctx);
  }
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
