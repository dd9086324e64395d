import type { OpLogEntry } from '../domain/entry.ts';
import { fromEntry } from '../domain/eventCodec.ts';
import { foldAll } from '../domain/fold.ts';
import { emptyState } from '../domain/state.ts';
import type { LoggedEvent, MetadataState } from '../domain/types.ts';
import type { LogBatch } from '../ports/opLog.ts';

/**
 * The committed state of one node: only entries the OpLog acknowledged (primary) or
 * delivered (standby) are ever folded in. Each apply replaces the frozen state with a new one,
 * so a reader holding the old state (verification, full sync, status) is never disturbed.
 */
export class CommittedStore {
  #state: MetadataState = emptyState();
  #lastStreamSeq = 0;
  #skippedMessages = 0;

  /** The frozen committed state. */
  get state(): MetadataState {
    return this.#state;
  }

  /** The last entry folded in. */
  get appliedSeq(): number {
    return this.#state.appliedSeq;
  }

  /** The stream sequence of the message that held the last entry folded in. */
  get lastStreamSeq(): number {
    return this.#lastStreamSeq;
  }

  /** Stream messages passed over because they were not batches of entries, since start. */
  get skippedMessages(): number {
    return this.#skippedMessages;
  }

  /**
   * Folds a batch a follower delivered ({@link applyEntries}), or passes over a message that
   * is no batch of entries (counted; the stream position still moves past it). True when the
   * batch was passed over.
   */
  applyBatch(batch: LogBatch): boolean {
    if (batch.undecodable === undefined) {
      this.applyEntries(batch.entries, batch.streamSeq);
      return false;
    }
    // Counted once: a message at or before the last one passed is a redelivery.
    if (batch.streamSeq > this.#lastStreamSeq) this.#skippedMessages++;
    this.#lastStreamSeq = Math.max(this.#lastStreamSeq, batch.streamSeq);
    return true;
  }

  /**
   * Folds entries delivered by the log. Entries at or below `appliedSeq` are skipped (a
   * redelivery); anything else out of order, or an entry failing its checksum, throws
   * (`FoldError`, `CodecError`) and changes nothing.
   */
  applyEntries(entries: readonly OpLogEntry[], streamSeq: number): void {
    const fresh: LoggedEvent[] = [];
    for (const entry of entries) {
      if (entry.seq <= this.#state.appliedSeq) continue;
      fresh.push(fromEntry(entry));
    }
    if (fresh.length > 0) this.#state = foldAll(this.#state, fresh);
    this.#lastStreamSeq = Math.max(this.#lastStreamSeq, streamSeq);
  }

  /**
   * Installs a state the primary already computed by folding acknowledged events (its
   * speculative state at that entry), with the stream sequence that acknowledged it.
   */
  commit(state: MetadataState, streamSeq: number): void {
    if (state.appliedSeq < this.#state.appliedSeq) {
      throw new Error(`commit would go back from ${this.#state.appliedSeq} to ${state.appliedSeq}`);
    }
    this.#state = state;
    this.#lastStreamSeq = Math.max(this.#lastStreamSeq, streamSeq);
  }

  /** Replaces everything (full sync). */
  reset(state: MetadataState = emptyState(), streamSeq = 0): void {
    this.#state = state;
    this.#lastStreamSeq = streamSeq;
  }
}
