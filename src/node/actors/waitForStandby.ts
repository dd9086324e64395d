import type { MemberRecord } from '../../ports/elector.ts';
import type { ActorContext } from '../nodeContext.ts';

/**
 * How long no other node (no node `target` when one is named) may be registered before the wait
 * gives up, on the node's clock: nobody can catch up then. A node's runtime registers its member
 * record first, while it reads its state; a process still connecting to NATS and etcd is not
 * waited for: it takes over by election once it has caught up.
 */
export const ALONE_GIVE_UP_MS = 500;

/**
 * Polls until a standby (`input.target`, or any other node when undefined) is within
 * `maxLagForPromotion` of `input.seq()`, asking it through `probePeer` when there is one;
 * false after `handoverTimeoutMs`, once `signal` aborts, or once no such node has been
 * registered for {@link ALONE_GIVE_UP_MS} (a list of members that cannot be read is not taken
 * as empty).
 */
export async function waitForStandby({
  input,
  signal,
  ctx,
}: {
  input: { readonly target: string | undefined; readonly seq: () => number };
  signal?: AbortSignal | undefined;
  ctx: ActorContext<
    'elector' | 'clock' | 'probePeer' | 'nodeId',
    'handoverTimeoutMs' | 'maxLagForPromotion'
  >;
}): Promise<boolean> {
  const { elector, clock, probePeer, config } = ctx;
  const { target, seq } = input;
  const deadline = clock.monotonicNow() + config.handoverTimeoutMs;
  /** A member that could take over: another node, the target when one is named. */
  const candidate = (m: MemberRecord): boolean =>
    m.nodeId !== ctx.nodeId && (target === undefined || m.nodeId === target);
  const isReady = async (m: MemberRecord): Promise<boolean> => {
    const seen =
      probePeer === undefined ? m : await probePeer(m).catch(() => ({ role: '', appliedSeq: 0 }));
    return seen.role === 'standby' && seq() - seen.appliedSeq <= config.maxLagForPromotion;
  };
  /** Since when the members read showed no candidate. */
  let aloneSince: number | undefined;
  while (clock.monotonicNow() < deadline && signal?.aborted !== true) {
    const candidates = (await elector.members().catch(() => undefined))?.filter(candidate);
    if (candidates?.length === 0) {
      aloneSince ??= clock.monotonicNow();
      if (clock.monotonicNow() - aloneSince >= ALONE_GIVE_UP_MS) return false;
    } else {
      aloneSince = undefined;
    }
    if (await anyOf((candidates ?? []).map(isReady))) return true;
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 20));
  }
  return false;
}

/**
 * True as soon as one of `checks` resolves true; false once all have resolved false or failed.
 * A slow check (a peer that does not answer its probe) does not hold up a ready one.
 */
function anyOf(checks: readonly Promise<boolean>[]): Promise<boolean> {
  return new Promise((resolve) => {
    let left = checks.length;
    if (left === 0) resolve(false);
    const settle = (ok: boolean): void => {
      if (ok) resolve(true);
      else if (--left === 0) resolve(false);
    };
    for (const check of checks) check.then(settle, () => settle(false));
  });
}
