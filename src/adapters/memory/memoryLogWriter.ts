import type { OpLogEntry } from '../../domain/log/entry.ts';
import type { TimerHandle } from '../../ports/clock.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  OpLogClosedError,
  type AppendAck,
  type OpLogWriter,
} from '../../ports/opLog.ts';
import type { MemoryLogLink } from './memoryLogLink.ts';

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

/** How a node's appends travel: see {@link MemoryOpLogOptions} `schedule` and `resolveTimeoutMs`. */
export interface MemoryAppendTravel {
  readonly schedule: (step: () => void) => void;
  readonly resolveTimeoutMs: number;
}

/**
 * A fenced, pipelined writer of one node over its {@link MemoryLogLink}, with the semantics
 * {@link createMemoryOpLog} describes: appends reach the store in call order in steps run by
 * `schedule`; a fence fails that append and every later one; an append whose acknowledgement
 * does not come is read back for `resolveTimeoutMs`, then is ambiguous, as is every later one.
 */
export function openMemoryLogWriter(
  link: MemoryLogLink,
  travel: MemoryAppendTravel,
  writerOptions: { readonly expectedLastStreamSeq: number },
): OpLogWriter {
  const { store, nodeId, armTimeout, oneWay, after, now, canReach, reachable } = link;
  const { schedule, resolveTimeoutMs } = travel;
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
      if (writerClosed || link.closed()) return Promise.reject(new OpLogClosedError('append'));
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
