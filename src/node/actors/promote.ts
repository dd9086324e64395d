import type { MasterNodeEvent } from '../../../machines/masterNode.machine.ts';
import type { Logged } from '../../domain/decider.ts';
import type { CampaignResult } from '../../ports/elector.ts';
import type { LogBounds, OpLogWriter } from '../../ports/opLog.ts';
import { FoldSlices, foldBatch } from './followLog.ts';
import type { ActorContext } from '../nodeContext.ts';
import { LoggedClock } from '../state/loggedClock.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/**
 * The `campaign` actor: takes a new lease when the last one was lost or given up, then
 * campaigns once. A campaign whose outcome is unknown (it failed: a timeout may hide a commit)
 * or that nobody waits for any more (`signal` aborted: the machine left `campaigning`) gives the
 * lease up, so a leader key it may have created does not stay bound to a node that is not
 * promoting; the next campaign takes a new lease.
 */
export async function campaign({
  signal,
  ctx,
}: {
  signal: AbortSignal;
  ctx: ActorContext<
    'elector' | 'logger' | 'nodeId' | 'address' | 'clock' | 'machine',
    'campaignPreferenceMs'
  >;
}): Promise<CampaignResult> {
  const { elector, logger } = ctx;
  await elector.start();
  await preferenceHold(signal, ctx);
  const undo = async (why: string): Promise<void> => {
    logger.warn({ event: 'campaignUndone', why }, 'giving up the lease of this campaign');
    await elector.resign().catch(() => undefined);
  };
  let result: CampaignResult;
  try {
    result = await elector.campaign({ nodeId: ctx.nodeId, address: ctx.address });
  } catch (err) {
    await undo(`the campaign failed: ${String(err)}`);
    throw err;
  }
  if (signal.aborted && result.won) await undo('the campaign was cancelled');
  return result;
}

/**
 * Waits what `config.campaignPreferenceMs` adds for this node given the live members (a group
 * of several lets its preferred node campaign first), unless a switchover named this node or
 * the wait is cancelled. A member list that cannot be read adds nothing: the campaign goes on.
 */
async function preferenceHold(
  signal: AbortSignal,
  ctx: ActorContext<'elector' | 'logger' | 'clock' | 'machine', 'campaignPreferenceMs'>,
): Promise<void> {
  const prefer = ctx.config.campaignPreferenceMs;
  if (prefer === undefined || ctx.machine.context().handoverTo !== undefined) return;
  const members = await ctx.elector.members().catch(() => []);
  const ids = members.map((m) => m.nodeId);
  const holdMs = prefer(ids);
  if (holdMs <= 0 || signal.aborted) return;
  ctx.logger.info(
    { event: 'campaignHold', holdMs, members: ids },
    `another live member is preferred: campaigning in ${holdMs} ms`,
  );
  await new Promise<void>((resolve) => {
    const timer = ctx.clock.setTimeout(done, holdMs);
    function done(): void {
      timer.clear();
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How long a promotion waits before asking a log that did not answer for its bounds again. */
const BOUNDS_RETRY_MS = 100;

/** A promotion that stopped before its fence was appended: cancelled, or out of time. */
export class PromotionStoppedError extends UnderstudyError {
  override readonly name = 'PromotionStoppedError';
  readonly code = 'PROMOTION_STOPPED';
  constructor(
    readonly reason: 'cancelled' | 'timeout' | 'leaseDeadline',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The `promote` actor: drains the log into `ctx.store`, opens a writer and appends the `EPOCH`
 * fence of `input.epoch`; once the fence is acknowledged, the writer is the term's (`term.writer`) and every
 * object counts as read-leased. It stops (rejects with {@link PromotionStoppedError}) when
 * `signal` aborts (the machine left `promoting`, e.g. on `lease.lost`), when it has not finished
 * within `promoteTimeoutMs` (default the TTL: a node that cannot reach the log must not hold the
 * leader key), or when the lease deadline passes before the fence is written. A log that fails
 * to give its bounds is asked again until then. Stopped after it opened a writer, it closes it,
 * appends nothing more and gives the lease up.
 */
export async function promote({
  input,
  signal,
  ctx,
}: {
  input: { readonly epoch: number };
  signal: AbortSignal;
  ctx: ActorContext<
    | 'opLog'
    | 'elector'
    | 'lease'
    | 'clock'
    | 'logger'
    | 'nodeId'
    | 'store'
    | 'checks'
    | 'leases'
    | 'term'
    | 'domain',
    'leaseTtlMs' | 'promoteTimeoutMs'
  >;
}): Promise<{ epoch: number; appliedSeq: number }> {
  const { opLog, elector, lease, clock, logger, store, leases, term, config, domain } = ctx;
  const { epoch } = input;
  const timeoutMs = config.promoteTimeoutMs ?? config.leaseTtlMs;
  let stopped: PromotionStoppedError | undefined;
  const wakers = new Set<() => void>();
  const stop = (error: PromotionStoppedError): void => {
    stopped ??= error;
    for (const wake of [...wakers]) wake();
  };
  const onAbort = (): void => stop(new PromotionStoppedError('cancelled', 'promotion cancelled'));
  signal.addEventListener('abort', onAbort);
  if (signal.aborted) onAbort();
  const timer = clock.setTimeout(
    () => stop(new PromotionStoppedError('timeout', `promotion not done within ${timeoutMs} ms`)),
    timeoutMs,
  );
  /**
   * Settles like `step`, or rejects as soon as the promotion is stopped. `step` is always
   * handled, also when the promotion was stopped before it: a step started by a promotion the
   * node's stop cancelled may fail later (its NATS connection draining), and a rejection nobody
   * handles ends the process with exit code 1.
   */
  const unlessStopped = <T>(step: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const wake = (): void =>
        reject(stopped ?? new PromotionStoppedError('cancelled', 'promotion cancelled'));
      wakers.add(wake);
      step.then(resolve, reject).finally(() => wakers.delete(wake));
      if (stopped !== undefined) wake();
    });
  /**
   * The log's bounds, asked again after each failure until they come or the promotion stops: a
   * log that just lost a server answers nothing until its client has reconnected and its stream
   * has a leader again, which may come well within the promotion's deadline.
   */
  const readBounds = async (): Promise<LogBounds> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await unlessStopped(opLog.bounds());
      } catch (err) {
        if (stopped !== undefined) throw stopped;
        if (attempt === 1) {
          logger.warn(
            { event: 'promotionRetry', epoch, err: String(err) },
            'the log did not answer: asking again until the promotion deadline',
          );
        }
        await unlessStopped(
          new Promise<void>((resolve) => clock.setTimeout(resolve, BOUNDS_RETRY_MS)),
        );
      }
    }
  };
  let writer: OpLogWriter | undefined;
  try {
    const bounds = await readBounds();
    // Drained when every message stored then is folded or passed over: the last entry's seq
    // says nothing (it may be a foreign entry's, of any seq). The follower starts right after
    // the last message this store read; a store that read none has to drain only when the log
    // holds entries it lacks.
    const unread =
      store.lastStreamSeq > 0
        ? bounds.lastStreamSeq > store.lastStreamSeq
        : bounds.lastSeq > store.appliedSeq;
    if (unread) {
      const follower = opLog.follow(store.appliedSeq + 1, store.followFrom());
      const closeFollower = (): void => follower.close();
      wakers.add(closeFollower);
      try {
        // The lease's keep-alives run between slices.
        const slices = new FoldSlices(clock);
        for await (const batch of follower) {
          if (stopped !== undefined) break;
          await foldBatch(ctx, batch, () => stopped !== undefined);
          if (store.lastStreamSeq >= bounds.lastStreamSeq) break;
          await slices.yieldIfDue();
        }
      } finally {
        wakers.delete(closeFollower);
        follower.close();
      }
      if (stopped !== undefined) throw stopped;
    }
    if (!lease.live())
      throw new PromotionStoppedError('leaseDeadline', 'lease deadline passed while draining');
    // Every entry stored up to bounds.lastStreamSeq is folded now (bounds.lastSeq is the last
    // one), so the fence goes right after the stream's last message as it was then, even when
    // that message is no batch of entries (undecodable messages after the last entry hold none).
    // Anything stored since fences this append.
    const opened = opLog.openWriter({
      expectedLastStreamSeq: Math.max(store.lastStreamSeq, bounds.lastStreamSeq),
    });
    writer = opened;
    // The fence's ts is the logged time inherited from the log, not this node's wall clock
    // (which may be hours off): logged time moves on from here as fast as the monotonic clock
    // lets it (see LoggedClock), whatever this node's wall clock says.
    const logged: Logged<unknown> = {
      seq: store.appliedSeq + 1,
      epoch,
      ts: new LoggedClock(clock, store.state.logTime).stamp(),
      event: domain.log.fence(epoch, ctx.nodeId),
    };
    const next = domain.decider.evolve(store.state, logged);
    const ack = await unlessStopped(opened.append([domain.log.toEntry(logged)]));
    if (stopped !== undefined) throw stopped;
    store.commit(next, ack.streamSeq);
    term.writer = opened;
    writer = undefined;
    leases.leaseAll(store.state);
    logger.info({ event: 'fenceWritten', epoch, seq: logged.seq }, 'EPOCH fence appended');
    return { epoch, appliedSeq: store.appliedSeq };
  } catch (err) {
    if (stopped !== undefined) {
      // Whatever this promotion opened goes: the writer (its fence may still land, which only
      // fences this node's own epoch) and the lease, so no key stays bound to a node that does
      // not serve.
      logger.warn({ event: 'promotionStopped', epoch, why: stopped.message }, 'promotion stopped');
      writer?.close().catch(() => undefined);
      await elector.resign().catch(() => undefined);
    } else writer?.close().catch(() => undefined);
    throw err;
  } finally {
    timer.clear();
    signal.removeEventListener('abort', onAbort);
  }
}

/** The `watchLease` actor: sends `lease.lost` once the lease is lost. Returns its closer. */
export function watchLease({
  ctx,
  sendBack,
}: {
  ctx: ActorContext<'lease'>;
  sendBack: (event: MasterNodeEvent) => void;
}): () => void {
  return ctx.lease.onLost((reason) => sendBack({ type: 'lease.lost', reason }));
}
