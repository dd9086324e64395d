import type { Clock, TimerHandle } from '../../ports/clock.ts';

interface SimTimer {
  readonly dueMs: number;
  /** Creation order: breaks ties between timers due at the same time. */
  readonly order: number;
  readonly fn: () => void;
  cleared: boolean;
}

/**
 * A simulated clock for deterministic tests: time moves only when the test calls
 * {@link SimClock.advance}. Timers fire in due-time order, ties in creation order, each
 * seeing `now()` equal to its due time; a timer set while advancing fires in the same
 * advance when it falls due within it. Both readings of the {@link Clock} port are `now()`
 * (the simulation's per-node clocks add wall-clock offsets and steps on top).
 */
export class SimClock implements Clock {
  private nowMs: number;
  private nextOrder = 0;
  private timers: SimTimer[] = [];

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  /** The simulated time (ms). */
  now(): number {
    return this.nowMs;
  }

  monotonicNow(): number {
    return this.nowMs;
  }

  wallNow(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: SimTimer = {
      dueMs: this.nowMs + Math.max(0, ms),
      order: this.nextOrder++,
      fn,
      cleared: false,
    };
    this.timers.push(timer);
    return {
      clear: () => {
        timer.cleared = true;
        this.timers = this.timers.filter((t) => t !== timer);
      },
    };
  }

  /** Timers set and neither fired nor cleared. */
  pendingTimers(): number {
    return this.timers.length;
  }

  /** The due time of the earliest pending timer, if any. */
  nextDueMs(): number | undefined {
    return this.next()?.dueMs;
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due on the way (in order),
   * then leaves `now()` at the old time + `ms`. Synchronous: promise callbacks a timer
   * schedules run after `advance` returns (see {@link SimClock.advanceAsync}).
   */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError(`SimClock.advance: negative step ${ms}`);
    const target = this.nowMs + ms;
    for (;;) {
      const timer = this.next();
      if (timer === undefined || timer.dueMs > target) break;
      this.fire(timer);
    }
    this.nowMs = target;
  }

  /**
   * Like {@link SimClock.advance}, but lets queued microtasks and promise callbacks run
   * (via a macrotask turn) after every timer, so async work a timer starts can settle and
   * set further timers before time moves on.
   */
  async advanceAsync(ms: number): Promise<void> {
    if (ms < 0) throw new RangeError(`SimClock.advanceAsync: negative step ${ms}`);
    const target = this.nowMs + ms;
    await settle();
    for (;;) {
      const timer = this.next();
      if (timer === undefined || timer.dueMs > target) break;
      this.fire(timer);
      await settle();
    }
    this.nowMs = target;
    await settle();
  }

  /**
   * Fires pending timers (moving time to each one's due time) until none is left or
   * `maxTimers` fired; returns how many fired. For timers that re-arm themselves (keep-alives)
   * prefer {@link SimClock.advance}.
   */
  runUntilIdle(maxTimers = 10_000): number {
    let fired = 0;
    for (; fired < maxTimers; fired++) {
      const timer = this.next();
      if (timer === undefined) break;
      this.fire(timer);
    }
    return fired;
  }

  private next(): SimTimer | undefined {
    let best: SimTimer | undefined;
    for (const timer of this.timers) {
      if (
        best === undefined ||
        timer.dueMs < best.dueMs ||
        (timer.dueMs === best.dueMs && timer.order < best.order)
      ) {
        best = timer;
      }
    }
    return best;
  }

  private fire(timer: SimTimer): void {
    this.timers = this.timers.filter((t) => t !== timer);
    if (timer.cleared) return;
    this.nowMs = Math.max(this.nowMs, timer.dueMs);
    timer.fn();
  }
}

/** Lets every queued microtask, and the promise chains they start, run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
