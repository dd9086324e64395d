import type { Clock, TimerHandle } from '../ports/clock.ts';

/**
 * The real clock: `performance.now()` (monotonic), `Date.now()` (wall) and the host's
 * `setTimeout`, whose delays are monotonic too. Pending timers keep the process alive, as
 * Node's own timers do; clear them when shutting down.
 */
export const systemClock: Clock = {
  monotonicNow: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = setTimeout(fn, Math.max(0, ms));
    return { clear: () => clearTimeout(timer) };
  },
};
