/**
 * The broken variants of the system the simulation runs to show its checkers catch each
 * (see {@link Breakage}): the adapters and stores each one swaps in.
 */
import { MemoryLogStore, type StoredMessage } from '../../src/adapters/memory/memoryLogStore.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import type { Elector } from '../../src/ports/elector.ts';
import type { AppendAck, OpLog, OpLogWriter } from '../../src/ports/opLog.ts';

/**
 * A broken variant of the system, to show the checkers catch it: (a) appends without the
 * expected sequence, (b) folding and answering before the acknowledgement, (c) no lease-deadline
 * check, (d) no session table (requests carry no session, so a retry is applied again), (e)
 * refusals answered before the appends they were judged against commit, (f) lease deadlines on
 * the wall clock, which NTP steps.
 */
export type Breakage =
  | 'none'
  | 'appendWithoutExpectedSeq'
  | 'foldBeforeAck'
  | 'noLeaseDeadline'
  | 'noSessionTable'
  | 'refusalsBeforeCommit'
  | 'wallClockDeadline';

/**
 * Broken variant (a), "append without the expected sequence": a stream that stores every
 * message at its end, whatever stream seq the writer expected and whatever entry seq it
 * carries, as JetStream does for a publish without expected-last-sequence.
 */
export class UnfencedLogStore extends MemoryLogStore {
  override append(_expectedLastStreamSeq: number, entries: readonly OpLogEntry[]): AppendAck {
    // The base class keeps its fields private to TypeScript only; this test double reaches
    // them on purpose to store what the real store would refuse.
    const inner = this as unknown as {
      stored: StoredMessage[];
      lastStreamSeqValue: number;
      lastEntrySeqValue: number;
      notify(): void;
    };
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined) throw new RangeError('empty append');
    const streamSeq = ++inner.lastStreamSeqValue;
    inner.lastEntrySeqValue = Math.max(inner.lastEntrySeqValue, last.seq);
    inner.stored.push({ streamSeq, entries: [...entries] });
    inner.notify();
    return { streamSeq, firstSeq: first.seq, lastSeq: last.seq };
  }
}

/**
 * Broken variant (b), "fold before the acknowledgement": a writer that acknowledges at send
 * time, so the write pipeline folds and answers before the log has acknowledged anything.
 */
export function ackingAtSend(opLog: OpLog): OpLog {
  return {
    ...opLog,
    openWriter(options) {
      const inner = opLog.openWriter(options);
      let streamSeq = options.expectedLastStreamSeq;
      const writer: OpLogWriter = {
        get fenced() {
          return inner.fenced;
        },
        append(entries) {
          inner.append(entries).catch(() => undefined);
          const first = entries[0]?.seq ?? 0;
          const last = entries[entries.length - 1]?.seq ?? 0;
          return Promise.resolve({ streamSeq: ++streamSeq, firstSeq: first, lastSeq: last });
        },
        close: () => inner.close(),
      };
      return writer;
    },
  };
}

/**
 * Broken variant (c), "no lease-deadline check": the node believes its lease never ends and
 * never hears that it was lost.
 */
export function withoutLeaseDeadline(elector: Elector): Elector {
  return {
    start: () => elector.start(),
    campaign: (info) => elector.campaign(info),
    leader: () => elector.leader(),
    election: (epoch, nodeId) => elector.election(epoch, nodeId),
    observe: (onChange) => elector.observe(onChange),
    leaseDeadline: () => Number.POSITIVE_INFINITY,
    onLeaseLost: () => () => undefined,
    resign: (options) => elector.resign(options),
    publishMember: (record) => elector.publishMember(record),
    members: () => elector.members(),
    close: () => elector.close(),
  };
}
