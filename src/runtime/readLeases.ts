import type { Clock } from '../ports/clock.ts';

/**
 * Read leases a primary grants with `get`. They are not in the log and not in checksums. After
 * promotion every object counts as leased for one lease TTL (`leaseAll`), so nothing a reader
 * of the previous primary may still be reading is removed or evicted during a failover.
 */
export class ReadLeases {
  readonly #expiry = new Map<string, number>();
  #allUntil = 0;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  /** Leases `key` for one TTL from now; returns when the lease ends. */
  grant(key: string): number {
    const until = this.clock.monotonicNow() + this.ttlMs;
    this.#expiry.set(key, until);
    if (this.#expiry.size > 100_000) this.#sweep();
    return until;
  }

  /** Treats every object as leased for one TTL from now. */
  leaseAll(): void {
    this.#allUntil = this.clock.monotonicNow() + this.ttlMs;
  }

  isReadLeased = (key: string): boolean => {
    const now = this.clock.monotonicNow();
    if (now < this.#allUntil) return true;
    const until = this.#expiry.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#expiry.delete(key);
    return false;
  };

  clear(): void {
    this.#expiry.clear();
    this.#allUntil = 0;
  }

  #sweep(): void {
    const now = this.clock.monotonicNow();
    for (const [key, until] of this.#expiry) if (until <= now) this.#expiry.delete(key);
  }
}
