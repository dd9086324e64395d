import type { MemberRecord } from '../../ports/elector.ts';
import type { ActorContext } from '../nodeContext.ts';

/**
 * Polls until a standby (`input.target`, or any other node when undefined) is within
 * `maxLagForPromotion` of `input.seq()`, asking it through `probePeer` when there is one;
 * false after `handoverTimeoutMs` or once `signal` aborts.
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
  const isReady = async (m: MemberRecord): Promise<boolean> => {
    if (m.nodeId === ctx.nodeId || (target !== undefined && m.nodeId !== target)) {
      return false;
    }
    const seen =
      probePeer === undefined ? m : await probePeer(m).catch(() => ({ role: '', appliedSeq: 0 }));
    return seen.role === 'standby' && seq() - seen.appliedSeq <= config.maxLagForPromotion;
  };
  while (clock.monotonicNow() < deadline && signal?.aborted !== true) {
    const members = await elector.members().catch(() => []);
    if (await anyOf(members.map(isReady))) return true;
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
