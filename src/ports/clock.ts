/** A timer started by a {@link Clock}; cancel it with `clear`. */
export interface TimerHandle {
  clear(): void;
}

/**
 * Time, as a port. The real clock reads `Date.now()` and uses `setTimeout`; the simulated
 * clock advances only when the test tells it to, so lease deadlines and timers are
 * deterministic in tests.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. Never decreases between two calls on one clock. */
  now(): number;
  /** Calls `fn` once, no earlier than `ms` milliseconds from now. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}
