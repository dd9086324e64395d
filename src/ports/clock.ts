/** A timer started by a {@link Clock}; cancel it with `clear`. */
export interface TimerHandle {
  clear(): void;
}

/**
 * Time, as a port: two readings and timers. The real clock ({@link systemClock}) reads
 * `performance.now()` and `Date.now()` and uses `setTimeout`; the simulated clock advances only
 * when the test tells it to, so lease deadlines and timers are deterministic in tests.
 *
 * Every decision that depends on time passing (the lease deadline, keep-alive bookkeeping,
 * whether the node may still serve, read leases, timeouts, backoff, client deadlines) uses the
 * monotonic reading. The wall reading is for the `ts` of logged entries (kept from jumping by
 * `node/state/loggedClock.ts`) and for display only (member records, "last verified 3 s ago"):
 * an NTP step of the wall clock must never let a node act longer than its lease allows.
 */
export interface Clock {
  /**
   * Monotonic milliseconds from an arbitrary origin: never decreases and is not stepped by
   * NTP or an operator. Only differences of two readings on one clock mean anything.
   */
  monotonicNow(): number;
  /** Milliseconds since the Unix epoch. May jump backwards or forwards at any time. */
  wallNow(): number;
  /** Calls `fn` once, no earlier than `ms` milliseconds (monotonic) from now. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
}
