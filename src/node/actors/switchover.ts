import type { ActorContext } from '../nodeContext.ts';
import { waitForStandby } from './waitForStandby.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** Why a planned switchover was refused or failed. */
export type SwitchoverFailure =
  'notPrimary' | 'targetIsSelf' | 'unknownTarget' | 'targetNotReady' | 'handoverFailed';

/** A planned switchover was refused (the node still serves) or failed while handing over. */
export class SwitchoverError extends UnderstudyError {
  override readonly name = 'SwitchoverError';
  readonly code = 'SWITCHOVER_FAILED';
  constructor(
    readonly reason: SwitchoverFailure,
    message: string,
    readonly target?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What a switchover did, as seen by the primary that handed over. */
export interface SwitchoverResult {
  readonly from: string;
  readonly target: string | undefined;
  /** The last entry written before resigning: the next primary's fence follows it. */
  readonly appliedSeq: number;
  /** The epoch that ended. */
  readonly epoch: number;
  /** From the request to the leader key's deletion (ms). */
  readonly tookMs: number;
}

/**
 * Planned switchover of the node (see `NodeRuntime.switchover`): checks the target, waits for
 * it (or any standby) while still serving, then sends `node.switchover` through
 * `machine.requestHandover` and resolves once the machine is back in `standby`.
 */
export async function switchover({
  input,
  ctx,
}: {
  input: { readonly target: string | undefined };
  ctx: ActorContext<
    'clock' | 'elector' | 'nodeId' | 'probePeer' | 'store' | 'machine',
    'handoverTimeoutMs' | 'maxLagForPromotion'
  >;
}): Promise<SwitchoverResult> {
  const { clock, elector, store, config, machine } = ctx;
  const { target } = input;
  const actor = machine.actor();
  const started = clock.monotonicNow();
  if (!actor.getSnapshot().matches({ running: 'primary' })) {
    throw new SwitchoverError('notPrimary', `${ctx.nodeId} is ${machine.role()}, not primary`);
  }
  if (target === ctx.nodeId) {
    throw new SwitchoverError('targetIsSelf', `${target} is already the primary`, target);
  }
  if (target !== undefined) {
    const members = await elector.members();
    if (!members.some((m) => m.nodeId === target)) {
      throw new SwitchoverError('unknownTarget', `no member ${target} is registered`, target);
    }
  }
  // Wait for the target (or any standby) while still serving: a refusal leaves this node primary.
  if (!(await waitForStandby({ input: { target, seq: () => store.appliedSeq }, ctx }))) {
    throw new SwitchoverError(
      'targetNotReady',
      `${target ?? 'no node'} is not a standby within ${config.maxLagForPromotion} entries after ${config.handoverTimeoutMs} ms`,
      target,
    );
  }
  const epoch = actor.getSnapshot().context.epoch;
  let unsubscribe = (): void => undefined;
  // Settles only once the machine has entered `handingOver`: a snapshot before that (the event
  // reaching a node that stopped being primary meanwhile) says nothing of the handover, and
  // rejecting on it left a rejection nobody awaited.
  let entered = false;
  const done = new Promise<void>((resolve, reject) => {
    const sub = actor.subscribe((snapshot) => {
      if (snapshot.matches({ running: 'handingOver' })) {
        entered = true;
        return;
      }
      if (!entered) return;
      sub.unsubscribe();
      if (snapshot.matches({ running: 'standby' })) resolve();
      else {
        const fault = snapshot.context.lastFault ?? 'unknown';
        reject(new SwitchoverError('handoverFailed', `handover failed: ${fault}`, target));
      }
    });
    unsubscribe = () => sub.unsubscribe();
  });
  machine.requestHandover(
    target === undefined ? { type: 'node.switchover' } : { type: 'node.switchover', target },
  );
  if (!entered) {
    unsubscribe();
    throw new SwitchoverError('notPrimary', `${ctx.nodeId} is ${machine.role()}, not primary`);
  }
  await done;
  return {
    from: ctx.nodeId,
    target,
    appliedSeq: store.appliedSeq,
    epoch,
    tookMs: clock.monotonicNow() - started,
  };
}
