import type { Clock, TimerHandle } from '../ports/clock.ts';

/**
 * The real clock: `Date.now()` and the host's `setTimeout`. Pending timers keep the process
 * alive, as Node's own timers do; clear them when shutting down.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = setTimeout(fn, Math.max(0, ms));
    return { clear: () => clearTimeout(timer) };
  },
};
