import type { OpLogEntry } from '../../domain/log/entry.ts';
import {
  AppendOrderError,
  FencedError,
  type AppendAck,
  type LogBounds,
} from '../../ports/opLog.ts';
import { MemoryLogFaults } from './memoryLogFaults.ts';

/** One stored message of the in-memory stream. */
export interface StoredMessage {
  readonly streamSeq: number;
  readonly entries: readonly OpLogEntry[];
  /** Set for a message that does not decode (see {@link MemoryLogStore.publishUndecodable}). */
  readonly undecodable?: string;
}

/**
 * The shared in-memory "stream" behind every node's {@link createMemoryOpLog}: messages with
 * stream sequences from 1, fenced by expected last stream seq, plus what tests need to
 * inspect it and inject faults (retention trims, a lost tail, outsiders' messages; and the
 * switches of {@link MemoryLogFaults}: partitions, lost acks, stalled followers).
 */
export class MemoryLogStore extends MemoryLogFaults {
  private stored: StoredMessage[] = [];
  private lastStreamSeqValue = 0;
  private lastEntrySeqValue = 0;
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

  protected override notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
