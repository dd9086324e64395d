// A steady write load through the client library, recording every acknowledgement, for the
// end-to-end tests, the demo and the benchmarks.
import { ApiError, type UnderstudyClient } from '../../client/client.ts';

export interface AckRecord {
  readonly op: 'putStart' | 'putEnd';
  readonly key: string;
  /** The log seq of the acknowledged entry. */
  readonly seq: number;
  readonly sentAt: number;
  readonly ackedAt: number;
  readonly replicas?: readonly { segmentId: string; offset: number; length: number }[];
}

export interface WorkloadOptions {
  readonly concurrency?: number;
  readonly keyPrefix?: string;
  readonly size?: number;
  readonly replicaNum?: number;
  /** Writes only keys it accepts (e.g. the keys of one group), skipping the others. */
  readonly keyFilter?: (key: string) => boolean;
}

/**
 * Each worker writes `putStart(key)` then `putEnd(key)` for fresh keys, until stopped or until
 * its client is closed. Failed calls are recorded in `failures`.
 */
export class Workload {
  readonly acks: AckRecord[] = [];
  readonly failures: { readonly at: number; readonly key: string; readonly error: string }[] = [];
  #running = false;
  #next = 0;
  #workers: Promise<void>[] = [];

  constructor(
    private readonly client: UnderstudyClient,
    private readonly options: WorkloadOptions = {},
  ) {}

  start(): this {
    this.#running = true;
    const n = this.options.concurrency ?? 8;
    this.#workers = Array.from({ length: n }, () => this.#worker());
    return this;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
  }

  /** The first acknowledgement at or after `time` of an entry above `minSeq`. */
  firstAckAfter(time: number, minSeq = 0): AckRecord | undefined {
    return this.acks.find((a) => a.ackedAt >= time && a.seq > minSeq);
  }

  /** Resolves when `predicate` holds, checking every 20 ms; rejects after `timeoutMs`. */
  async until(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(`workload: ${what} not reached in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async #worker(): Promise<void> {
    const prefix = this.options.keyPrefix ?? 'obj';
    const size = this.options.size ?? 4096;
    const replicaNum = this.options.replicaNum ?? 2;
    while (this.#running) {
      let key = `${prefix}-${this.#next++}`;
      while (this.options.keyFilter?.(key) === false) key = `${prefix}-${this.#next++}`;
      try {
        let sentAt = Date.now();
        const placement = await this.client.putStart(key, size, replicaNum);
        this.acks.push({
          op: 'putStart',
          key,
          seq: placement.seq,
          sentAt,
          ackedAt: Date.now(),
          replicas: placement.replicas,
        });
        sentAt = Date.now();
        const done = await this.client.putEnd(key);
        this.acks.push({ op: 'putEnd', key, seq: done.seq, sentAt, ackedAt: Date.now() });
      } catch (err) {
        this.failures.push({ at: Date.now(), key, error: String(err) });
        // A closed client fails every call at once: go on and this loop would never leave the
        // microtask queue, starving every timer of the process (a test's own timeout too).
        if (err instanceof ApiError && err.code === 'CLOSED') return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }
}

/**
 * The longest time (ms) without an acknowledgement in [from, to]: between consecutive acks in
 * it, and from `from` to the first and the last to `to` (the whole span when there is none).
 */
export function longestAckGap(acks: readonly AckRecord[], from: number, to: number): number {
  const times = acks
    .map((a) => a.ackedAt)
    .filter((t) => t >= from && t <= to)
    .sort((a, b) => a - b);
  let last = from;
  let gap = 0;
  for (const t of times) {
    gap = Math.max(gap, t - last);
    last = t;
  }
  return Math.max(gap, to - last);
}
