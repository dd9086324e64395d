import type { Clock } from '../../ports/clock.ts';
import { OpLogClosedError, type LogFollower, type OpLog } from '../../ports/opLog.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';
import { followMemoryLog } from './memoryLogFollower.ts';
import { createMemoryLogLink } from './memoryLogLink.ts';
import type { MemoryLogStore } from './memoryLogStore.ts';
import { openMemoryLogWriter } from './memoryLogWriter.ts';

/** A call from a partitioned node timed out (only with a clock and `timeoutMs`). Retryable. */
export class OpLogUnavailableError extends UnderstudyError {
  override readonly name = 'OpLogUnavailableError';
  readonly code = 'OPLOG_UNAVAILABLE';
  override readonly retryable = true;
  constructor(
    readonly nodeId: string,
    readonly operation: string,
    options?: ErrorOptions,
  ) {
    super(`${operation} from ${nodeId}: the log is unreachable`, options);
  }
}

export interface MemoryOpLogOptions {
  /** The node this log belongs to, for partitions; default a unique `log-<n>`. */
  readonly nodeId?: string;
  /**
   * Runs a step of an append (its arrival at the store) later; default `queueMicrotask`.
   * Inject e.g. a fast-check scheduler to explore interleavings of several writers: each
   * writer's own appends still reach the store in call order.
   */
  readonly schedule?: (step: () => void) => void;
  /** With `timeoutMs`: calls that wait on a partition fail after that long on this clock. */
  readonly clock?: Clock;
  /** How long an append waits for its acknowledgement (ms; needs `clock`), as a publish does. */
  readonly timeoutMs?: number;
  /**
   * How long, after `timeoutMs`, an unacknowledged append keeps being read back before it is
   * ambiguous (ms; default 0): as the NATS writer, it settles as it really went once the node
   * reaches the log again within this window.
   */
  readonly resolveTimeoutMs?: number;
  /** One way of an append or a read, on `clock` (ms), asked per call; default 0. */
  readonly latencyMs?: () => number;
}

/** An {@link OpLog} over a {@link MemoryLogStore}, with the node id it uses for partitions. */
export interface MemoryOpLog extends OpLog {
  readonly nodeId: string;
}

let nextLogId = 1;

/**
 * One node's view of the shared stream, with the port's semantics: fenced pipelined writers
 * (a rejection fails that append and every later one of the writer with {@link FencedError}
 * carrying the real last stream seq), followers that yield each entry from `fromSeq` on
 * exactly once and in order (starting inside a message when `fromSeq` falls in one) and
 * wait for more, {@link NotRetainedError} when `fromSeq` (or a slow follower's position)
 * is older than what is retained.
 *
 * Appends settle asynchronously: each reaches the store in a step run by `schedule`
 * (microtasks by default) after its `latencyMs`, so nothing is stored during the `append` call
 * itself, and its acknowledgement takes `latencyMs` to come back. A partitioned node's
 * appends, and appends whose acks are dropped, are not acknowledged: after `timeoutMs` (with
 * `clock`) they are read back for `resolveTimeoutMs` (settling as they really went once the
 * node reaches the log again), then reject as {@link AmbiguousAppendError}, after which the
 * writer rejects every later append the same way, as its fate is unknown to it. `close()`
 * resolves once every append in flight has settled, as the NATS writer's does.
 */
export function createMemoryOpLog(
  store: MemoryLogStore,
  options: MemoryOpLogOptions = {},
): MemoryOpLog {
  const nodeId = options.nodeId ?? `log-${nextLogId++}`;
  const schedule = options.schedule ?? queueMicrotask;
  const { clock, timeoutMs } = options;
  const resolveTimeoutMs = options.resolveTimeoutMs ?? 0;
  let closed = false;
  const followers = new Set<LogFollower>();

  const link = createMemoryLogLink(store, nodeId, {
    clock,
    timeoutMs,
    latencyMs: options.latencyMs,
    closed: () => closed,
  });
  const { armTimeout, after, oneWay, reachable } = link;

  return {
    nodeId,
    openWriter: (writerOptions) =>
      openMemoryLogWriter(link, { schedule, resolveTimeoutMs }, writerOptions),
    follow: (fromSeq, followOptions) => followMemoryLog(link, followers, fromSeq, followOptions),
    async bounds() {
      if (closed) throw new OpLogClosedError('bounds');
      await new Promise<void>((resolve) => after(oneWay(), resolve));
      if (store.isPartitioned(nodeId)) {
        await new Promise<void>((resolve, reject) => {
          const timer = armTimeout(() => reject(new OpLogUnavailableError(nodeId, 'bounds')));
          void reachable().then(() => {
            timer?.clear();
            resolve();
          });
        });
      }
      const bounds = store.bounds();
      await new Promise<void>((resolve) => after(oneWay(), resolve));
      return bounds;
    },
    trimThrough(streamSeq: number) {
      if (closed) return Promise.reject(new OpLogClosedError('trimThrough'));
      store.trimThrough(streamSeq);
      return Promise.resolve();
    },
    close() {
      closed = true;
      for (const follower of [...followers]) follower.close();
      return Promise.resolve();
    },
  };
}
