// Write loads through the client library: closed loop (N calls always outstanding) and open
// loop (calls issued at a fixed rate whatever the answers), recording each acknowledgement.

/** One acknowledged call: when it was sent and answered (performance.now() ms), how many writes it committed, and the highest seq. */
export interface CallRecord {
  readonly sentAt: number;
  readonly ackedAt: number;
  readonly writes: number;
  readonly seq: number;
}

/** What a load did in its measured window. */
export interface LoadResult {
  readonly seconds: number;
  /** Committed writes (batch calls count each item that committed). */
  readonly writes: number;
  readonly calls: readonly CallRecord[];
  /** Calls that failed (with the first error's text). */
  readonly failures: number;
  readonly firstFailure?: string;
  /** Open loop only: calls not issued because too many were outstanding (over capacity). */
  readonly skipped: number;
}

/** A call: resolves with the writes it committed and the highest seq among them. */
export type BenchCall = (index: number) => Promise<{ writes: number; seq: number }>;

function collect(
  seconds: number,
  calls: CallRecord[],
  failures: number,
  firstFailure: string | undefined,
  skipped = 0,
): LoadResult {
  const writes = calls.reduce((sum, c) => sum + c.writes, 0);
  return {
    seconds,
    writes,
    calls,
    failures,
    ...(firstFailure !== undefined ? { firstFailure } : {}),
    skipped,
  };
}

/**
 * Keeps `concurrency` calls outstanding for `seconds` (after `warmupSeconds` not counted);
 * counts the calls acknowledged inside the window.
 */
export async function closedLoop(
  call: BenchCall,
  concurrency: number,
  seconds: number,
  warmupSeconds = 1,
): Promise<LoadResult> {
  const calls: CallRecord[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  let index = 0;
  const t0 = performance.now();
  const windowStart = t0 + warmupSeconds * 1000;
  const windowEnd = windowStart + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < windowEnd) {
      const sentAt = performance.now();
      try {
        const { writes, seq } = await call(index++);
        const ackedAt = performance.now();
        if (sentAt >= windowStart && ackedAt <= windowEnd)
          calls.push({ sentAt, ackedAt, writes, seq });
      } catch (err) {
        failures++;
        firstFailure ??= String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return collect(seconds, calls, failures, firstFailure);
}

/**
 * Issues calls at `ratePerSec` for `seconds`, whatever the answers (at most `maxOutstanding`
 * unanswered: beyond that the load is over capacity and calls are skipped and counted).
 * Every acknowledged call is recorded.
 */
export async function openLoop(
  call: BenchCall,
  ratePerSec: number,
  seconds: number,
  maxOutstanding = 4096,
): Promise<LoadResult> {
  const calls: CallRecord[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  let issued = 0;
  let skipped = 0;
  let outstanding = 0;
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - start) / 1000) * ratePerSec);
    while (issued < due) {
      const index = issued++;
      if (outstanding >= maxOutstanding) {
        skipped++;
        continue;
      }
      outstanding++;
      const sentAt = performance.now();
      const p = call(index).then(
        ({ writes, seq }) => {
          calls.push({ sentAt, ackedAt: performance.now(), writes, seq });
        },
        (err: unknown) => {
          failures++;
          firstFailure ??= String(err);
        },
      );
      const tracked = p.finally(() => {
        outstanding--;
        pending.delete(tracked);
      });
      pending.add(tracked);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(pending);
  return collect(seconds, calls, failures, firstFailure, skipped);
}
