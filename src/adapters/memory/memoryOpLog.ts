import type { OpLogEntry } from '../../domain/entry.ts';
import type { Clock, TimerHandle } from '../../ports/clock.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  NotRetainedError,
  OpLogClosedError,
  type AppendAck,
  type LogBatch,
  type LogBounds,
  type LogFollower,
  type OpLog,
  type OpLogWriter,
} from '../../ports/opLog.ts';

/** One stored message of the in-memory stream. */
export interface StoredMessage {
  readonly streamSeq: number;
  readonly entries: readonly OpLogEntry[];
}

/** A call from a partitioned node timed out (only with a clock and `timeoutMs`). Retryable. */
export class OpLogUnavailableError extends Error {
  override readonly name = 'OpLogUnavailableError';
  readonly retryable = true;
  constructor(
    readonly nodeId: string,
    readonly operation: string,
    options?: ErrorOptions,
  ) {
    super(`${operation} from ${nodeId}: the log is unreachable`, options);
  }
}

/**
 * The shared in-memory "stream" behind every node's {@link createMemoryOpLog}: messages with
 * stream sequences from 1, fenced by expected last stream seq, plus what tests need to
 * inspect it and inject faults (retention trims, partitions).
 *
 * Partitions: while a node id is partitioned its appends and `bounds()` wait (a message in
 * flight is not stored until the heal), and its followers stall; `heal` lets them continue.
 * With a clock and `timeoutMs` (see {@link MemoryOpLogOptions}) waiting calls fail instead.
 *
 * Lost acknowledgements: while a node id's acks are dropped (`dropAcks`), its appends are
 * stored (or fenced) but the writer never hears the outcome: with a clock and `timeoutMs`
 * they reject as {@link AmbiguousAppendError} although the entries may be in the log, which
 * is what a publish whose ack timed out looks like. `heal` ends it for later appends.
 */
export class MemoryLogStore {
  private stored: StoredMessage[] = [];
  private lastStreamSeqValue = 0;
  private lastEntrySeqValue = 0;
  private readonly partitioned = new Set<string>();
  private readonly ackless = new Set<string>();
  private readonly listeners = new Set<() => void>();

  /** Every retained message, oldest first (a copy). */
  messages(): StoredMessage[] {
    return [...this.stored];
  }

  /** Every retained entry, in seq order. */
  entries(): OpLogEntry[] {
    return this.stored.flatMap((message) => message.entries);
  }

  get lastStreamSeq(): number {
    return this.lastStreamSeqValue;
  }

  /** The first entry still retained, or the next one to come when none is. */
  get firstRetainedSeq(): number {
    return this.stored[0]?.entries[0]?.seq ?? this.lastEntrySeqValue + 1;
  }

  bounds(): LogBounds {
    const first = this.stored[0]?.entries[0]?.seq;
    return {
      firstSeq: first ?? 0,
      lastSeq: first === undefined ? 0 : this.lastEntrySeqValue,
      lastStreamSeq: this.lastStreamSeqValue,
    };
  }

  /**
   * Retention: drops every message all of whose entries are older than `entrySeq` (a message
   * holding `entrySeq` stays whole, as a stream drops whole messages).
   */
  trimBefore(entrySeq: number): void {
    this.stored = this.stored.filter((message) => {
      const last = message.entries[message.entries.length - 1];
      return last !== undefined && last.seq >= entrySeq;
    });
    this.notify();
  }

  /** Retention by checkpoint: drops every message up to and including stream message `streamSeq`. */
  trimThrough(streamSeq: number): void {
    this.stored = this.stored.filter((message) => message.streamSeq > streamSeq);
    this.notify();
  }

  /** Cuts `nodeId` off: its appends and reads wait (or time out), its followers stall. */
  partition(nodeId: string): void {
    this.partitioned.add(nodeId);
  }

  /** Stores `nodeId`'s appends from now on without telling its writers (see the class doc). */
  dropAcks(nodeId: string): void {
    this.ackless.add(nodeId);
  }

  /** Reconnects `nodeId` (ends a partition and dropped acks): what waited goes on. */
  heal(nodeId: string): void {
    this.partitioned.delete(nodeId);
    this.ackless.delete(nodeId);
    this.notify();
  }

  acksDropped(nodeId: string): boolean {
    return this.ackless.has(nodeId);
  }

  isPartitioned(nodeId: string): boolean {
    return this.partitioned.has(nodeId);
  }

  /**
   * Stores `entries` as one message if the stream's last message is `expectedLastStreamSeq`;
   * throws {@link FencedError} otherwise (and {@link AppendOrderError} when the first
   * entry does not follow the last). Synchronous: the writers add the asynchrony.
   */
  append(expectedLastStreamSeq: number, entries: readonly OpLogEntry[]): AppendAck {
    if (this.lastStreamSeqValue !== expectedLastStreamSeq) {
      throw new FencedError(expectedLastStreamSeq, this.lastStreamSeqValue);
    }
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined) {
      throw new AppendOrderError(this.lastEntrySeqValue + 1, undefined, 'empty append');
    }
    if (first.seq !== this.lastEntrySeqValue + 1) {
      throw new AppendOrderError(
        this.lastEntrySeqValue + 1,
        first.seq,
        `append must start at entry ${this.lastEntrySeqValue + 1}, got ${first.seq}`,
      );
    }
    entries.forEach((entry, i) => {
      if (entry.seq !== first.seq + i) {
        throw new AppendOrderError(
          first.seq + i,
          entry.seq,
          `append must start at entry ${first.seq + i}, got ${entry.seq}`,
        );
      }
    });
    const streamSeq = ++this.lastStreamSeqValue;
    this.lastEntrySeqValue = last.seq;
    this.stored.push({ streamSeq, entries: [...entries] });
    this.notify();
    return { streamSeq, firstSeq: first.seq, lastSeq: last.seq };
  }

  /** Calls `listener` after every change (append, trim, heal) until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
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
  readonly timeoutMs?: number;
}

/** An {@link OpLog} over a {@link MemoryLogStore}, with the node id it uses for partitions. */
export interface MemoryOpLog extends OpLog {
  readonly nodeId: string;
}

let nextLogId = 1;

interface PendingAppend {
  readonly entries: readonly OpLogEntry[];
  readonly resolve: (ack: AppendAck) => void;
  readonly reject: (err: Error) => void;
  timer: TimerHandle | undefined;
}

/**
 * One node's view of the shared stream, with the port's semantics: fenced pipelined writers
 * (a rejection fails that append and every later one of the writer with {@link FencedError}
 * carrying the real last stream seq), followers that yield each entry from `fromSeq` on
 * exactly once and in order (starting inside a message when `fromSeq` falls in one) and
 * wait for more, {@link NotRetainedError} when `fromSeq` (or a slow follower's position)
 * is older than what is retained.
 *
 * Appends settle asynchronously: each reaches the store in a step run by `schedule`
 * (microtasks by default), so nothing is stored during the `append` call itself.
 * A partitioned node's appends, and appends whose acks are dropped, time out (with `clock`
 * and `timeoutMs`) as {@link AmbiguousAppendError}, after which the writer rejects every
 * later append the same way, as its fate is unknown to it.
 */
export function createMemoryOpLog(
  store: MemoryLogStore,
  options: MemoryOpLogOptions = {},
): MemoryOpLog {
  const nodeId = options.nodeId ?? `log-${nextLogId++}`;
  const schedule = options.schedule ?? queueMicrotask;
  const { clock, timeoutMs } = options;
  let closed = false;
  const followers = new Set<LogFollower>();

  const armTimeout = (onTimeout: () => void): TimerHandle | undefined =>
    clock !== undefined && timeoutMs !== undefined
      ? clock.setTimeout(onTimeout, timeoutMs)
      : undefined;

  /** Resolves once `nodeId` is not partitioned (at once when it is not). */
  const reachable = (): Promise<void> =>
    new Promise((resolve) => {
      if (!store.isPartitioned(nodeId)) {
        resolve();
        return;
      }
      const unsubscribe = store.subscribe(() => {
        if (!store.isPartitioned(nodeId)) {
          unsubscribe();
          resolve();
        }
      });
    });

  function openWriter(writerOptions: { readonly expectedLastStreamSeq: number }): OpLogWriter {
    let expected = writerOptions.expectedLastStreamSeq;
    let fenced: FencedError | undefined;
    let broken: AmbiguousAppendError | undefined;
    let writerClosed = false;
    const queue: PendingAppend[] = [];
    /** Stored (or fenced) while acks were dropped: waiting for a reply that never comes. */
    const unacknowledged = new Set<PendingAppend>();
    let delivering = false;

    const failAll = (makeError: (pending: PendingAppend) => Error): void => {
      for (const pending of queue.splice(0)) {
        pending.timer?.clear();
        pending.reject(makeError(pending));
      }
    };

    const ambiguous = (entries: readonly OpLogEntry[], cause?: Error): AmbiguousAppendError =>
      new AmbiguousAppendError(
        entries[0]?.seq ?? 0,
        entries[entries.length - 1]?.seq ?? 0,
        cause === undefined ? undefined : { cause },
      );

    /** Delivers the head of the queue to the store (after any partition heals). */
    const deliverNext = (): void => {
      if (delivering) return;
      const head = queue[0];
      if (head === undefined) return;
      delivering = true;
      schedule(() => {
        void reachable().then(() => {
          delivering = false;
          const pending = queue.shift();
          if (pending === undefined) return;
          const replyLost = store.acksDropped(nodeId);
          if (replyLost) unacknowledged.add(pending);
          else pending.timer?.clear();
          try {
            const ack = store.append(expected, pending.entries);
            expected = ack.streamSeq;
            if (!replyLost) pending.resolve(ack);
          } catch (err) {
            if (replyLost) {
              // The rejection is lost too: the writer will time out, not learn of the fence.
            } else if (err instanceof FencedError) {
              fenced = new FencedError(err.expectedStreamSeq, err.actualStreamSeq);
              pending.reject(err);
              failAll(() => new FencedError(expected, fenced?.actualStreamSeq));
            } else {
              pending.reject(err instanceof Error ? err : new Error(String(err)));
            }
          }
          deliverNext();
        });
      });
    };

    return {
      get fenced() {
        return fenced !== undefined;
      },
      append(entries) {
        if (fenced !== undefined) {
          return Promise.reject(new FencedError(expected, fenced.actualStreamSeq));
        }
        if (broken !== undefined) return Promise.reject(ambiguous(entries, broken));
        if (writerClosed || closed) return Promise.reject(new OpLogClosedError('append'));
        if (entries.length === 0) {
          return Promise.reject(new AppendOrderError(undefined, undefined, 'empty append'));
        }
        return new Promise<AppendAck>((resolve, reject) => {
          const pending: PendingAppend = {
            entries: [...entries],
            resolve,
            reject,
            timer: undefined,
          };
          pending.timer = armTimeout(() => {
            // No reply came: whether the store took it is unknown to the writer, so this and
            // everything after it is ambiguous.
            const cause = ambiguous(pending.entries);
            broken = cause;
            pending.reject(cause);
            for (const lost of unacknowledged) {
              lost.timer?.clear();
              if (lost !== pending) lost.reject(ambiguous(lost.entries, cause));
            }
            unacknowledged.clear();
            failAll((p) => (p === pending ? cause : ambiguous(p.entries, cause)));
          });
          queue.push(pending);
          deliverNext();
        });
      },
      close() {
        writerClosed = true;
        return Promise.resolve();
      },
    };
  }

  function follow(fromSeq: number): LogFollower {
    let position = Math.max(1, fromSeq);
    let followerClosed = false;
    let wake: (() => void) | undefined;
    const unsubscribe = store.subscribe(() => wake?.());

    const waitForChange = (): Promise<void> =>
      new Promise((resolve) => {
        wake = () => {
          wake = undefined;
          resolve();
        };
      });

    const next = async (): Promise<IteratorResult<LogBatch>> => {
      for (;;) {
        if (followerClosed || closed) return { done: true, value: undefined };
        if (store.isPartitioned(nodeId)) {
          await waitForChange();
          continue;
        }
        const first = store.firstRetainedSeq;
        if (position < first) {
          follower.close();
          throw new NotRetainedError(position, first);
        }
        const message = store
          .messages()
          .find((m) => (m.entries[m.entries.length - 1]?.seq ?? 0) >= position);
        if (message === undefined) {
          await waitForChange();
          continue;
        }
        const entries = message.entries.filter((entry) => entry.seq >= position);
        const last = entries[entries.length - 1];
        if (last !== undefined) position = last.seq + 1;
        return { done: false, value: { streamSeq: message.streamSeq, entries } };
      }
    };

    const follower: LogFollower = {
      close() {
        if (followerClosed) return;
        followerClosed = true;
        unsubscribe();
        followers.delete(follower);
        wake?.();
      },
      [Symbol.asyncIterator]() {
        return {
          next,
          return: () => {
            follower.close();
            return Promise.resolve({ done: true, value: undefined });
          },
        };
      },
    };
    followers.add(follower);
    return follower;
  }

  return {
    nodeId,
    openWriter,
    follow,
    async bounds() {
      if (closed) throw new OpLogClosedError('bounds');
      await Promise.resolve();
      if (store.isPartitioned(nodeId)) {
        await new Promise<void>((resolve, reject) => {
          const timer = armTimeout(() => reject(new OpLogUnavailableError(nodeId, 'bounds')));
          void reachable().then(() => {
            timer?.clear();
            resolve();
          });
        });
      }
      return store.bounds();
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
