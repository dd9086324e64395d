import { admit, type ElectedCheck, type ForeignEntry } from '../../domain/log/admission.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import type { Logged, LogState } from '../../domain/decider.ts';
import type { FollowOptions, LogBatch } from '../../ports/opLog.ts';
import type { AnyNodeDomain, NodeDomain } from '../nodeDomain.ts';

/** What became of a batch: passed over (it does not decode), or folded but for foreign entries. */
export interface BatchOutcome {
  /** Set when the message is no batch of entries: why. */
  readonly undecodable?: string;
  /** Entries not folded because they are no elected primary's (see domain/log/admission.ts). */
  readonly foreign: readonly ForeignEntry[];
  /** False for a message at or before the last one folded or passed (a redelivery). */
  readonly fresh: boolean;
}

/**
 * The committed state of one node: only entries the OpLog acknowledged (primary) or
 * delivered (standby) are ever folded in. Each apply replaces the frozen state with a new one,
 * so a reader holding the old state (verification, full sync, status) is never disturbed.
 */
export class CommittedStore<S extends LogState = LogState, E = unknown> {
  readonly #domain: Pick<NodeDomain<S, unknown, E, unknown>, 'decider' | 'log'>;
  #state: S;
  #lastStreamSeq = 0;
  #entryStreamSeq = 0;
  #skippedMessages = 0;
  #foreignEntries = 0;

  /** An empty store of `domain`'s state (its decider's initial state). */
  constructor(domain: Pick<NodeDomain<S, unknown, E, unknown>, 'decider' | 'log'>) {
    this.#domain = domain;
    this.#state = domain.decider.initialState();
  }

  /** The frozen committed state. */
  get state(): S {
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

  /**
   * The stream sequence of the message that held the last entry folded in: at or before
   * {@link lastStreamSeq}, which also counts messages passed over after it. What a checkpoint
   * records, so retention keeps the message holding its last entry and the stream's first
   * entry then shows it continues the checkpoint (a foreign message after it may carry any seq).
   */
  get entryStreamSeq(): number {
    return this.#entryStreamSeq;
  }

  /**
   * Where a follower of the log picks up after this state: right after the last stream message
   * folded or passed over, when there is one (the entries' seqs cannot place it: an outsider's
   * may carry any).
   */
  followFrom(): FollowOptions {
    return this.#lastStreamSeq > 0 ? { afterStreamSeq: this.#lastStreamSeq } : {};
  }

  /** Stream messages passed over because they were not batches of entries, since start. */
  get skippedMessages(): number {
    return this.#skippedMessages;
  }

  /** Entries passed over because they were no elected primary's, since start. */
  get foreignEntries(): number {
    return this.#foreignEntries;
  }

  /**
   * Folds a batch a follower delivered ({@link applyEntries}), or passes over a message that
   * is no batch of entries; either way the stream position moves past it. What was passed
   * over is counted once, not again on a redelivery.
   */
  applyBatch(batch: LogBatch, elected: ElectedCheck): BatchOutcome {
    const fresh = batch.streamSeq > this.#lastStreamSeq;
    if (batch.undecodable === undefined) {
      const foreign = this.applyEntries(batch.entries, batch.streamSeq, elected);
      if (fresh) this.#foreignEntries += foreign.length;
      return { foreign, fresh };
    }
    if (fresh) this.#skippedMessages++;
    this.#lastStreamSeq = Math.max(this.#lastStreamSeq, batch.streamSeq);
    return { undecodable: batch.undecodable, foreign: [], fresh };
  }

  /**
   * Folds the entries delivered by the log that are the elected primary's (domain/log/admission.ts),
   * and returns the foreign ones. Entries at or below `appliedSeq` are skipped (a redelivery);
   * anything else out of order, or an entry failing its checksum, throws (`FoldError`,
   * `CodecError`) and changes nothing.
   */
  applyEntries(
    entries: readonly OpLogEntry[],
    streamSeq: number,
    elected: ElectedCheck,
  ): readonly ForeignEntry[] {
    const { decider, log } = this.#domain;
    const fresh: Logged<E>[] = [];
    for (const entry of entries) {
      if (entry.seq <= this.#state.appliedSeq) continue;
      fresh.push(log.fromEntry(entry));
    }
    let foreign: readonly ForeignEntry[] = [];
    if (fresh.length > 0) {
      const split = admit(this.#state.epoch, fresh, elected, log);
      this.#state = decider.evolveAll(this.#state, split.admitted);
      foreign = split.foreign;
      if (split.admitted.length > 0)
        this.#entryStreamSeq = Math.max(this.#entryStreamSeq, streamSeq);
    }
    this.#lastStreamSeq = Math.max(this.#lastStreamSeq, streamSeq);
    return foreign;
  }

  /**
   * Installs a state the primary already computed by folding acknowledged events (its
   * speculative state at that entry), with the stream sequence that acknowledged it.
   */
  commit(state: S, streamSeq: number): void {
    if (state.appliedSeq < this.#state.appliedSeq) {
      throw new Error(`commit would go back from ${this.#state.appliedSeq} to ${state.appliedSeq}`);
    }
    this.#state = state;
    this.#lastStreamSeq = Math.max(this.#lastStreamSeq, streamSeq);
    this.#entryStreamSeq = Math.max(this.#entryStreamSeq, streamSeq);
  }

  /** Replaces everything (full sync). */
  reset(state: S = this.#domain.decider.initialState(), streamSeq = 0): void {
    this.#state = state;
    this.#lastStreamSeq = streamSeq;
    this.#entryStreamSeq = streamSeq;
  }
}

/** The committed store of a node running `domain` (state read as `LogState` by the node). */
export type NodeStore = CommittedStore<LogState, unknown>;

/** A node's committed store of `domain`. */
export function nodeStore(domain: AnyNodeDomain): NodeStore {
  return new CommittedStore(domain);
}
