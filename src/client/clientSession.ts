import { randomBytes } from 'node:crypto';

/**
 * The client's session (see `UnderstudyClient`, "Exactly once"): its id, the request numbers
 * of its write calls, and the lowest number it still waits for, which every attempt carries.
 */
export class ClientSession {
  readonly id: string;
  /** The next request number of the session. */
  #nextRequestNo = 1;
  /** Request numbers of write calls not answered yet. */
  readonly #pending = new Set<number>();
  /** No number below this is pending (the lowest pending one, or #nextRequestNo). */
  #oldestPending = 1;

  /** `id`: 32 lowercase hex digits (default: 128 random bits from the OS). */
  constructor(id: string | undefined) {
    this.id = id ?? randomBytes(16).toString('hex');
    if (!/^[0-9a-f]{32}$/.test(this.id))
      throw new TypeError('createClient: sessionId must be 32 lowercase hex digits');
  }

  /** Takes `count` request numbers (at least one) for a call; returns the first. */
  take(count: number): number {
    const requestNo = this.#nextRequestNo;
    this.#nextRequestNo += Math.max(1, count);
    for (let n = requestNo; n < this.#nextRequestNo; n++) this.#pending.add(n);
    return requestNo;
  }

  /** Gives up the `count` numbers from `requestNo`: their call was answered or given up. */
  release(requestNo: number, count: number): void {
    for (let n = requestNo; n < requestNo + Math.max(1, count); n++) this.#pending.delete(n);
  }

  /** The lowest request number still waiting for an answer. */
  lowestPending(): number {
    while (this.#oldestPending < this.#nextRequestNo && !this.#pending.has(this.#oldestPending))
      this.#oldestPending++;
    return this.#oldestPending;
  }
}
