import type { OpLogEntry } from '../../domain/log/entry.ts';
import type { Clock, TimerHandle } from '../../ports/clock.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  NotRetainedError,
  OpLogClosedError,
  type AppendAck,
  type LogBatch,
  type FollowOptions,
  type LogBounds,
  type LogFollower,
  type OpLog,
  type OpLogWriter,
} from '../../ports/opLog.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** One stored message of the in-memory stream. */
export interface StoredMessage {
  readonly streamSeq: number;
  readonly entries: readonly OpLogEntry[];
  /** Set for a message that does not decode (see {@link MemoryLogStore.publishUndecodable}). */
  readonly undecodable?: string;
}

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
  private readonly followerStalls = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  /** Every retained message, oldest first (a copy). */
  messages(): StoredMessage[] {
    return [...this.stored];
  }

  /** Every retained entry, in seq order. */
  entries(): OpLogEntry[] {
    return this.stored.flatMap((message) => message.entries);
  }

  /** The first retained message holding entries (undecodable ones hold none). */
  #firstWithEntries(): StoredMessage | undefined {
    return this.stored.find((message) => message.entries.length > 0);
  }

  get lastStreamSeq(): number {
    return this.lastStreamSeqValue;
  }

  /** The first entry still retained, or the next one to come when none is. */
  get firstRetainedSeq(): number {
    return this.#firstWithEntries()?.entries[0]?.seq ?? this.lastEntrySeqValue + 1;
  }

  bounds(): LogBounds {
    const first = this.#firstWithEntries()?.entries[0]?.seq;
    // As a stream's: the last entry of the last message holding entries, whoever published it.
    const last = this.stored.findLast((message) => message.entries.length > 0);
    return {
      firstSeq: first ?? 0,
      lastSeq: last?.entries[last.entries.length - 1]?.seq ?? 0,
      lastStreamSeq: this.lastStreamSeqValue,
    };
  }

  /**
   * Retention: drops every message all of whose entries are older than `entrySeq` (a message
   * holding `entrySeq` stays whole, as a stream drops whole messages).
   */
  trimBefore(entrySeq: number): void {
    const keepFrom = this.stored.findIndex(
      (message) => (message.entries[message.entries.length - 1]?.seq ?? -1) >= entrySeq,
    );
    this.stored = keepFrom < 0 ? [] : this.stored.slice(keepFrom);
    this.notify();
  }

  /** Retention by checkpoint: drops every message up to and including stream message `streamSeq`. */
  trimThrough(streamSeq: number): void {
    this.stored = this.stored.filter((message) => message.streamSeq > streamSeq);
    this.notify();
  }

  /**
   * TEST ONLY: the stream loses every message after `streamSeq`, and its last sequence goes back
   * to `streamSeq`, as a JetStream server that lost its last writes in a power loss.
   */
  loseTail(streamSeq: number): void {
    this.stored = this.stored.filter((message) => message.streamSeq <= streamSeq);
    this.lastStreamSeqValue = streamSeq;
    const last = this.stored.findLast((message) => message.entries.length > 0);
    this.lastEntrySeqValue = last?.entries[last.entries.length - 1]?.seq ?? 0;
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

  /**
   * Every follower `nodeId` has open now stops delivering, silently and for good (it neither
   * yields nor ends), as an ordered consumer the server forgot; followers opened later work.
   */
  stallFollowers(nodeId: string): void {
    this.followerStalls.set(nodeId, this.stallCount(nodeId) + 1);
  }

  /** How many times `nodeId`'s followers were stalled (a follower remembers it at open). */
  stallCount(nodeId: string): number {
    return this.followerStalls.get(nodeId) ?? 0;
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
    // A stream written and emptied since: the next entry may be any later one (a stream knows
    // no entry seqs; the checkpoint its writer started from does, as after an accepted loss of
    // the stream's tail).
    const due = this.lastEntrySeqValue + 1;
    const emptied = this.stored.length === 0 && this.lastStreamSeqValue > 0;
    if (emptied ? first.seq < due : first.seq !== due) {
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

  /**
   * Stores a message that is not a batch of entries, with no expected last sequence, as bytes an
   * outsider published to the OpLog subject (or a message corrupted on disk) would be: it takes
   * the next stream slot, so the writer that expected that slot is fenced. Returns its stream
   * sequence.
   */
  publishUndecodable(reason = 'not a batch of entries'): number {
    const streamSeq = ++this.lastStreamSeqValue;
    this.stored.push({ streamSeq, entries: [], undecodable: reason });
    this.notify();
    return streamSeq;
  }

  /**
   * Stores well-formed `entries` as one message, with no expected last sequence and no check of
   * their seqs, as an outsider publishing to the OpLog subject could (a forged `EPOCH`, an entry
   * of a foreign epoch): it takes the next stream slot, so the writer that expected that slot is
   * fenced. Returns its stream sequence.
   */
  publishOutsider(entries: readonly OpLogEntry[]): number {
    const streamSeq = ++this.lastStreamSeqValue;
    this.stored.push({ streamSeq, entries: [...entries] });
    this.notify();
    return streamSeq;
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

interface PendingAppend {
  readonly entries: readonly OpLogEntry[];
  readonly resolve: (ack: AppendAck) => void;
  readonly reject: (err: Error) => void;
  /** When it may reach the store (monotonic; its request's travel). */
  readonly arrivesAt: number;
  timer: TimerHandle | undefined;
  /** Its acknowledgement is overdue: it is being read back. */
  overdue: boolean;
  /** What the store did with it, while the answer could not come back. */
  outcome: { readonly ack: AppendAck } | { readonly err: Error } | undefined;
  /** Resolved or rejected. */
  done: boolean;
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

  const armTimeout = (onTimeout: () => void, ms = timeoutMs): TimerHandle | undefined =>
    clock !== undefined && ms !== undefined ? clock.setTimeout(onTimeout, ms) : undefined;

  /** One way of a call: `latencyMs` on the clock (at once without a clock or latency). */
  const oneWay = (): number => (clock === undefined ? 0 : Math.max(0, options.latencyMs?.() ?? 0));
  const after = (ms: number, step: () => void): void => {
    if (ms <= 0 || clock === undefined) step();
    else clock.setTimeout(step, ms);
  };
  const now = (): number => clock?.monotonicNow() ?? 0;

  const canReach = (): boolean => !store.isPartitioned(nodeId);

  /** Resolves once `nodeId` is not partitioned (at once when it is not). */
  const reachable = (): Promise<void> =>
    new Promise((resolve) => {
      if (canReach()) {
        resolve();
        return;
      }
      const unsubscribe = store.subscribe(() => {
        if (canReach()) {
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
    const unacknowledged: PendingAppend[] = [];
    const inFlight = new Set<Promise<unknown>>();
    let delivering = false;
    let lastArrival = 0;

    /** Marks `pending` answered; false when it already was. */
    const settle = (pending: PendingAppend): boolean => {
      pending.timer?.clear();
      pending.timer = undefined;
      if (pending.done) return false;
      pending.done = true;
      return true;
    };

    const failAll = (makeError: (pending: PendingAppend) => Error): void => {
      for (const pending of queue.splice(0)) {
        if (settle(pending)) pending.reject(makeError(pending));
      }
    };

    const ambiguous = (entries: readonly OpLogEntry[], cause?: Error): AmbiguousAppendError =>
      new AmbiguousAppendError(
        entries[0]?.seq ?? 0,
        entries[entries.length - 1]?.seq ?? 0,
        cause === undefined ? undefined : { cause },
      );

    /** The store rejected `err` for `pending`: a fence fails everything after it too. */
    const rejectWith = (pending: PendingAppend, err: unknown): void => {
      if (err instanceof FencedError) {
        fenced ??= new FencedError(err.expectedStreamSeq, err.actualStreamSeq);
        pending.reject(err);
        for (const lost of unacknowledged.splice(0)) {
          if (settle(lost)) lost.reject(new FencedError(expected, fenced.actualStreamSeq));
        }
        failAll(() => new FencedError(expected, fenced?.actualStreamSeq));
      } else {
        pending.reject(err instanceof Error ? err : new Error(String(err)));
      }
    };

    /** Overdue appends whose outcome is known learn it once the node reaches the log again. */
    const readBack = (): void => {
      if (!canReach() || store.acksDropped(nodeId)) return;
      while (unacknowledged[0]?.overdue === true && unacknowledged[0].outcome !== undefined) {
        const pending = unacknowledged.shift()!;
        if (!settle(pending)) continue;
        const outcome = pending.outcome!;
        if ('ack' in outcome) pending.resolve(outcome.ack);
        else rejectWith(pending, outcome.err);
      }
    };
    const unsubscribe = store.subscribe(readBack);

    /** No answer and nothing learned within the window: this and every later append is unknown. */
    const giveUp = (pending: PendingAppend): void => {
      const cause = ambiguous(pending.entries);
      broken = cause;
      for (const lost of unacknowledged.splice(0)) {
        if (settle(lost)) lost.reject(lost === pending ? cause : ambiguous(lost.entries, cause));
      }
      failAll((p) => (p === pending ? cause : ambiguous(p.entries, cause)));
      if (settle(pending)) pending.reject(cause);
    };

    /** Delivers the head of the queue to the store (after its travel, and any partition). */
    const deliverNext = (): void => {
      if (delivering) return;
      const head = queue[0];
      if (head === undefined) return;
      delivering = true;
      after(head.arrivesAt - now(), () =>
        schedule(() => {
          void reachable().then(() => {
            delivering = false;
            const pending = queue.shift();
            if (pending === undefined) return;
            const replyLost = store.acksDropped(nodeId);
            let outcome: PendingAppend['outcome'];
            try {
              const ack = store.append(expected, pending.entries);
              expected = ack.streamSeq;
              outcome = { ack };
            } catch (err) {
              outcome = { err: err instanceof Error ? err : new Error(String(err)) };
            }
            if (replyLost) {
              // The answer is lost: the writer times out and reads it back (or gives up).
              pending.outcome = outcome;
              unacknowledged.push(pending);
              readBack();
            } else {
              const known = outcome;
              after(oneWay(), () => {
                if (!settle(pending)) return;
                if ('ack' in known) pending.resolve(known.ack);
                else rejectWith(pending, known.err);
              });
            }
            deliverNext();
          });
        }),
      );
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
        lastArrival = Math.max(lastArrival, now() + oneWay());
        const promise = new Promise<AppendAck>((resolve, reject) => {
          const pending: PendingAppend = {
            entries: [...entries],
            resolve,
            reject,
            arrivesAt: lastArrival,
            timer: undefined,
            overdue: false,
            outcome: undefined,
            done: false,
          };
          pending.timer = armTimeout(() => {
            if (resolveTimeoutMs <= 0) {
              giveUp(pending);
              return;
            }
            // No answer yet: read it back until the window closes.
            pending.overdue = true;
            pending.timer = armTimeout(() => giveUp(pending), resolveTimeoutMs);
            readBack();
          });
          queue.push(pending);
          deliverNext();
        });
        const tracked = promise.then(
          () => undefined,
          () => undefined,
        );
        inFlight.add(tracked);
        void tracked.then(() => inFlight.delete(tracked));
        return promise;
      },
      async close() {
        writerClosed = true;
        while (inFlight.size > 0) await Promise.all([...inFlight]);
        unsubscribe();
      },
    };
  }

  function follow(fromSeq: number, followOptions?: FollowOptions): LogFollower {
    let position = Math.max(1, fromSeq);
    let followerClosed = false;
    const stalls = store.stallCount(nodeId);
    let wake: (() => void) | undefined;
    const unsubscribe = store.subscribe(() => wake?.());

    const waitForChange = (): Promise<void> =>
      new Promise((resolve) => {
        wake = () => {
          wake = undefined;
          resolve();
        };
      });

    /**
     * The last stream message delivered; until the first delivery, the one before the message
     * holding `fromSeq` (undecodable messages before it are not this follower's to report).
     */
    let streamPosition: number | undefined;
    const known = followOptions?.afterStreamSeq;
    // Right after a message the reader knows, unless the stream never got that far (recreated).
    if (known !== undefined && known > 0 && known <= store.lastStreamSeq) streamPosition = known;

    const next = async (): Promise<IteratorResult<LogBatch>> => {
      for (;;) {
        if (followerClosed || closed) return { done: true, value: undefined };
        if (store.isPartitioned(nodeId) || store.stallCount(nodeId) > stalls) {
          await waitForChange();
          continue;
        }
        const first = store.firstRetainedSeq;
        const messages = store.messages();
        // Before the first delivery: is `fromSeq` still retained? After: was anything after the
        // last message delivered trimmed away?
        const trimmedAway =
          streamPosition === undefined
            ? position < first
            : (messages[0]?.streamSeq ?? store.lastStreamSeq + 1) > streamPosition + 1;
        if (trimmedAway) {
          follower.close();
          throw new NotRetainedError(position, first);
        }
        if (streamPosition === undefined) {
          const holding = messages.find(
            (m) => (m.entries[m.entries.length - 1]?.seq ?? 0) >= position,
          );
          if (holding === undefined) {
            // Not stored yet: what comes after the stream's last message is this follower's.
            streamPosition = store.lastStreamSeq;
            continue;
          }
          streamPosition = holding.streamSeq - 1;
        }
        // Every message after the last delivered, in stream order: the entries' seqs need not
        // rise (an outsider's may hold any), the reader tells the log's from foreign ones.
        const after = streamPosition;
        const message = messages.find((m) => m.streamSeq > after);
        if (message === undefined) {
          await waitForChange();
          continue;
        }
        streamPosition = message.streamSeq;
        if (message.undecodable !== undefined) {
          return {
            done: false,
            value: { streamSeq: message.streamSeq, entries: [], undecodable: message.undecodable },
          };
        }
        const entries = message.entries.filter((entry) => entry.seq >= fromSeq);
        const last = entries[entries.length - 1];
        if (last !== undefined) position = Math.max(position, last.seq + 1);
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
