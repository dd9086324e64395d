import type { LoggedEvent, MetadataState } from '../model/types.ts';
import { evolve } from './evolve.ts';
import { FoldError } from './foldError.ts';
import { recordResult, sweepSessionsWhenDue } from './sessionTable.ts';
import { WorkingState } from './workingState.ts';

// The fold's public entry. Its parts, by concern: evolve.ts (what each event does),
// workingState.ts (the copy-on-write draft the events change), sessionTable.ts (the clients'
// request results), shardSummaries.ts (the verification summary of each shard),
// replicaSpace.ts (the allocator's ranges), foldError.ts (the refusal).

export { FoldError } from './foldError.ts';

/**
 * Folds one logged event into the draft: checks its seq follows, advances the logged time,
 * applies the event's rule (evolve.ts), records the client's result in its session, sweeps
 * idle sessions when due, and only then marks the seq applied.
 */
function applyLogged(working: WorkingState, logged: LoggedEvent): void {
  const root = working.root;
  const expected = root.appliedSeq + 1;
  if (logged.seq !== expected) throw new FoldError(expected, logged.seq, 'out of sequence');
  working.seq = logged.seq;
  if (logged.ts > root.logTime) root.logTime = logged.ts;
  evolve(working, logged.event, logged.seq);
  if (logged.origin !== undefined) recordResult(working, logged.origin, logged);
  sweepSessionsWhenDue(working);
  root.appliedSeq = logged.seq;
}

/**
 * The next state while events are folded into it one at a time: {@link FoldDraft.state} reads
 * it as a state after every event (to decide the next command against), and
 * {@link FoldDraft.finish} freezes it once. The base state is never changed and stays valid.
 */
export class FoldDraft {
  readonly #working: WorkingState;
  #broken: FoldError | undefined;

  constructor(base: MetadataState) {
    this.#working = new WorkingState(base);
  }

  /**
   * The draft as a state: everything folded so far. Read it only (it is not frozen) and not
   * after `finish()`.
   */
  get state(): MetadataState {
    return this.#working.view;
  }

  /**
   * Folds the next event. Throws {@link FoldError} when it is out of sequence or cannot
   * apply; the draft is then unusable (a later call throws the same error), the base unchanged.
   */
  apply(logged: LoggedEvent): void {
    if (this.#broken !== undefined) throw this.#broken;
    try {
      applyLogged(this.#working, logged);
    } catch (err) {
      if (err instanceof FoldError) this.#broken = err;
      throw err;
    }
  }

  /** The frozen state with every event applied (the base itself when none was). */
  finish(): MetadataState {
    if (this.#broken !== undefined) throw this.#broken;
    return this.#working.finish();
  }
}

/**
 * Folds one event: returns the next frozen state; `state` is untouched and stays valid.
 * Throws {@link FoldError} (and changes nothing) when `logged.seq !== state.appliedSeq + 1` or
 * the event cannot apply (it contradicts the state: a decision the fold would have to make).
 */
export function fold(state: MetadataState, logged: LoggedEvent): MetadataState {
  const working = new WorkingState(state);
  applyLogged(working, logged);
  return working.finish();
}

/**
 * Folds consecutive events at once: the same result as folding them one by one, faster. All
 * or nothing: on a {@link FoldError} the input state is unchanged and nothing of the batch is
 * applied.
 */
export function foldAll(state: MetadataState, logged: readonly LoggedEvent[]): MetadataState {
  if (logged.length === 0) return state;
  const working = new WorkingState(state);
  for (const item of logged) applyLogged(working, item);
  return working.finish();
}
