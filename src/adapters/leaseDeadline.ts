import type { Clock, TimerHandle } from '../ports/clock.ts';

/**
 * A node's local view of its lease, shared by the etcd and memory electors.
 *
 * The deadline is (monotonic time the last confirmed keep-alive or grant was *sent*) + TTL -
 * margin: the store cannot have expired the lease before it, because the store started its TTL
 * no earlier than the request was sent. It is read synchronously; a timer also loses the lease
 * when the deadline passes. Once lost (deadline, expiry seen in the store, resign), a lease
 * stays lost: handlers run once and later confirmations are ignored, until `reset()` starts a
 * new lease.
 *
 * Time is the clock's monotonic reading only: a wall clock stepped back by NTP cannot extend
 * the deadline. The assumption is on clock *rates*: this node's clock and etcd's may run at
 * different speeds by at most margin / TTL over one TTL (the default margin, min(500 ms, TTL/5),
 * allows 10 % at the 5 s default TTL and 25 % at 2 s). A node whose clock runs that much slower
 * than etcd's could act after etcd expired its lease.
 */
export class LeaseDeadline {
  #lastConfirmedSentAt = Number.NEGATIVE_INFINITY;
  #lostReason: string | undefined;
  #timer: TimerHandle | undefined;
  #stopped = false;
  readonly #handlers = new Set<(reason: string) => void>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly marginMs: number,
  ) {}

  /** Monotonic clock time after which the lease must not be acted on. */
  deadline(): number {
    return this.#lastConfirmedSentAt + this.ttlMs - this.marginMs;
  }

  /** Why the lease was lost; undefined while it is live (or not granted yet). */
  get lostReason(): string | undefined {
    return this.#lostReason;
  }

  /**
   * A keep-alive (or the grant) sent at `sentAt` was confirmed by the store: the deadline moves
   * to it. Ignored once the lease is lost, and when `sentAt` is not after the deadline's base;
   * a confirmation of a keep-alive sent after the deadline loses the lease instead (the node
   * already had to stop).
   */
  confirm(sentAt: number): void {
    if (this.#lostReason !== undefined || this.#stopped) return;
    if (sentAt >= this.deadline() && this.#lastConfirmedSentAt !== Number.NEGATIVE_INFINITY) {
      this.check();
      return;
    }
    if (sentAt <= this.#lastConfirmedSentAt) return;
    this.#lastConfirmedSentAt = sentAt;
    this.#arm();
  }

  /** Loses the lease if its deadline has passed; true when the lease is (now) lost. */
  check(): boolean {
    if (this.#lostReason === undefined && this.clock.monotonicNow() >= this.deadline()) {
      this.lose(`lease deadline passed (${this.deadline()} <= ${this.clock.monotonicNow()})`);
    }
    return this.#lostReason !== undefined;
  }

  /** Marks the lease lost (once) and tells every handler. */
  lose(reason: string): void {
    if (this.#lostReason !== undefined || this.#stopped) return;
    this.#lostReason = reason;
    this.#timer?.clear();
    this.#timer = undefined;
    for (const handler of [...this.#handlers]) {
      try {
        handler(reason);
      } catch {
        // One handler's failure must not keep the others from hearing of the loss.
      }
    }
  }

  /** Calls `handler` once when the lease is lost (on the next microtask if it already is). */
  onLost(handler: (reason: string) => void): () => void {
    const reason = this.#lostReason;
    if (reason !== undefined) {
      queueMicrotask(() => handler(reason));
      return () => undefined;
    }
    this.#handlers.add(handler);
    return () => {
      this.#handlers.delete(handler);
    };
  }

  /** Forgets the lost lease: the next `confirm` (of a new grant) starts a new one. */
  reset(): void {
    this.#timer?.clear();
    this.#timer = undefined;
    this.#lostReason = undefined;
    this.#lastConfirmedSentAt = Number.NEGATIVE_INFINITY;
  }

  /** Stops the timer for good (the elector is closed); handlers are not called. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.clear();
    this.#timer = undefined;
  }

  #arm(): void {
    this.#timer?.clear();
    this.#timer = this.clock.setTimeout(
      () => {
        this.#timer = undefined;
        if (!this.check()) this.#arm();
      },
      Math.max(0, this.deadline() - this.clock.monotonicNow()),
    );
  }
}
