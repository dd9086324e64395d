import type { SimClock } from '../../src/adapters/memory/simClock.ts';
import type { Clock, TimerHandle } from '../../src/ports/clock.ts';

/**
 * One node's clock: the shared simulated time, shifted by `offsetMs` and running at `rate`
 * (drift), whose timers are held while the node is paused and released on resume, and dropped
 * once the node crashed. Its wall reading can be stepped (as NTP or an operator would) without
 * moving its monotonic reading.
 */
export class NodeClock implements Clock {
  #paused = false;
  #dead = false;
  #held: Array<{ fn: () => void; cleared: boolean }> = [];
  /** Simulated time when the rate last changed, and the reading (less the offset) then. */
  #anchor: number;
  #base: number;
  #rate: number;

  constructor(
    readonly sim: SimClock,
    readonly offsetMs: number,
    rate: number,
    /** How far the wall clock was stepped, in total (ms; negative: back). */
    public wallStepMs = 0,
  ) {
    this.#anchor = this.#base = sim.now();
    this.#rate = rate;
  }

  get rate(): number {
    return this.#rate;
  }

  /** From now on the clock runs at `rate` (its reading goes on from where it is). */
  setRate(rate: number): void {
    this.#base += (this.sim.now() - this.#anchor) * this.#rate;
    this.#anchor = this.sim.now();
    this.#rate = rate;
  }

  monotonicNow(): number {
    return Math.floor(this.#base + this.offsetMs + (this.sim.now() - this.#anchor) * this.#rate);
  }

  wallNow(): number {
    return this.monotonicNow() + this.wallStepMs;
  }

  /** Steps the wall clock by `ms` (negative: back); the monotonic clock does not move. */
  stepWall(ms: number): void {
    this.wallStepMs += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { fn, cleared: false };
    const realMs = Math.ceil((Math.max(0, ms) + 1) / this.#rate);
    const handle = this.sim.setTimeout(() => {
      if (this.#dead || timer.cleared) return;
      if (this.#paused) this.#held.push(timer);
      else fn();
    }, realMs);
    return {
      clear: () => {
        timer.cleared = true;
        handle.clear();
      },
    };
  }

  get paused(): boolean {
    return this.#paused;
  }

  pause(): void {
    this.#paused = true;
  }

  /** Runs every timer that fell due while paused, in order. */
  resume(): void {
    this.#paused = false;
    for (const timer of this.#held.splice(0)) if (!timer.cleared && !this.#dead) timer.fn();
  }

  /** The node crashed: nothing of it runs again. */
  kill(): void {
    this.#dead = true;
    this.#held = [];
  }
}
