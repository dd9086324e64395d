import type { Clock } from '../../ports/clock.ts';

/**
 * Read leases a primary grants with `get`. They are not in the log and not in checksums. After
 * promotion every object of the state promoted from counts as leased for one lease TTL
 * (`leaseAll`), so nothing a reader of the previous primary may still be reading is removed or
 * evicted during a failover. Objects created after the promotion were never served by another
 * primary: only their own reads lease them.
 */
export class ReadLeases<S = unknown> {
  readonly #expiry = new Map<string, number>();
  /**
   * The committed state at the last promotion (immutable, so keeping it costs no copy) and when
   * its objects' leases end; undefined once they have.
   */
  #promotion: { readonly state: S; readonly until: number } | undefined;

  /** `holds(state, key)`: whether `key` names something in `state` (the domain's service). */
  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly holds: (state: S, key: string) => boolean,
  ) {}

  /** Leases `key` for one TTL from now; returns when the lease ends. */
  grant(key: string): number {
    const until = this.clock.monotonicNow() + this.ttlMs;
    this.#expiry.set(key, until);
    if (this.#expiry.size > 100_000) this.#sweep();
    return until;
  }

  /** Treats every object of `state` (the committed state at promotion) as leased for one TTL. */
  leaseAll(state: S): void {
    this.#promotion = { state, until: this.clock.monotonicNow() + this.ttlMs };
  }

  isReadLeased = (key: string): boolean => {
    const now = this.clock.monotonicNow();
    if (this.#promotion !== undefined) {
      if (now >= this.#promotion.until) this.#promotion = undefined;
      else if (this.holds(this.#promotion.state, key)) return true;
    }
    const until = this.#expiry.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#expiry.delete(key);
    return false;
  };

  clear(): void {
    this.#expiry.clear();
    this.#promotion = undefined;
  }

  #sweep(): void {
    const now = this.clock.monotonicNow();
    for (const [key, until] of this.#expiry) if (until <= now) this.#expiry.delete(key);
  }
}
