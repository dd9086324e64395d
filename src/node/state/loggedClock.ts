import type { Clock } from '../../ports/clock.ts';

/**
 * How much faster than the monotonic clock logged time may run while it catches up with a wall
 * clock that is ahead of it (after downtime, or a wall clock stepped forward). At 2, a session
 * idle for less than half an hour of real time is never swept (SESSION_TTL_MS is one hour of
 * logged time), and logged time that lags the wall clock by L catches up within L.
 */
export const LOGGED_TIME_MAX_RATE = 2;

/**
 * The `ts` a primary stamps on the entries it appends: the wall clock, kept from jumping. Logged
 * time (the largest `ts`) is what idle sessions expire by, so one wall clock stepped hours ahead
 * must not move it hours at once, or every session (and with it exactly-once) would be swept.
 *
 * A stamp is the wall reading clamped between the previous stamp (logged time never goes back:
 * a wall clock behind it holds logged time still) and the previous stamp plus
 * {@link LOGGED_TIME_MAX_RATE} times the monotonic time since (logged time never runs ahead of
 * the monotonic clock by more than that). The base is the logged time this node inherits from
 * the log, read at the instant the clock is made (a promotion): a new primary whose wall clock
 * is hours ahead moves logged time no faster than the last one could. Before any entry was
 * logged (`lastTs` 0), the first stamp is the wall clock.
 *
 * The fold only takes the largest `ts` it has seen; the clamping happens here, where the entry
 * is stamped, so the fold stays a function of the log alone.
 */
export class LoggedClock {
  /** The last stamp (or the inherited logged time). */
  #ts: number;
  /** The ceiling's anchor: a logged time and the monotonic reading it was taken at. */
  #anchorTs: number;
  #anchorAt: number;

  constructor(
    private readonly clock: Pick<Clock, 'monotonicNow' | 'wallNow'>,
    lastTs: number,
  ) {
    this.#ts = this.#anchorTs = lastTs;
    this.#anchorAt = clock.monotonicNow();
  }

  /** The logged time of the last stamp, or the inherited one before any. */
  get last(): number {
    return this.#ts;
  }

  /** The `ts` of the next entry: never below the last, never jumping (see the class). */
  stamp(): number {
    const at = this.clock.monotonicNow();
    const wall = Math.floor(this.clock.wallNow());
    if (this.#ts <= 0) {
      this.#ts = this.#anchorTs = Math.max(0, wall);
      this.#anchorAt = at;
      return this.#ts;
    }
    const ceiling = Math.floor(
      this.#anchorTs + LOGGED_TIME_MAX_RATE * Math.max(0, at - this.#anchorAt),
    );
    const ts = Math.max(this.#ts, Math.min(wall, ceiling));
    // Below the ceiling (held by the wall clock or the last stamp), the unused allowance is
    // dropped: the ceiling starts again from here, so a wall clock held back for an hour and then
    // stepped forward cannot spend an hour's allowance at once. At the ceiling the anchor stays,
    // so stamps closer together than a millisecond lose no time to rounding.
    if (ts !== ceiling) {
      this.#anchorTs = ts;
      this.#anchorAt = at;
    }
    this.#ts = ts;
    return ts;
  }
}
