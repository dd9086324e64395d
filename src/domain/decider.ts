import { decide, type DecideContext, type Decision } from './decide/decide.ts';
import { fold, FoldDraft, foldAll } from './fold/fold.ts';
import { emptyState } from './model/state.ts';
import type { UnderstudyError } from './model/understudyError.ts';
import type { Command, MetadataEvent, MetadataState, RequestOrigin } from './model/types.ts';

export type { DecideContext, Decision } from './decide/decide.ts';
export { FoldError, type FoldDraft } from './fold/fold.ts';

/**
 * What every state a node runs carries, whatever its domain: where in the log it is and in
 * which term. A node reads these and nothing else of a state.
 */
export interface LogState {
  /** Seq of the last event folded in (0 for the initial state). */
  readonly appliedSeq: number;
  /** The epoch of the last fence folded in (0 before any). */
  readonly epoch: number;
  /** Logged time: the largest entry `ts` folded so far (0 before any). Never goes back. */
  readonly logTime: number;
}

/** An event of a domain with its place in the log (the metadata's is `LoggedEvent`). */
export interface Logged<E> {
  readonly seq: number;
  readonly epoch: number;
  readonly ts: number;
  readonly event: E;
  /** The client request that caused it; absent for the primary's own events. */
  readonly origin?: RequestOrigin;
}

/** A command decided: the event to log, or the refusal (a domain error with its code). */
export type DecisionOf<E> =
  | { readonly ok: true; readonly event: E }
  | { readonly ok: false; readonly error: UnderstudyError & { readonly code: string } };

/** A state being evolved one event at a time, frozen once at the end (see {@link Decider.draft}). */
export interface Draft<S, E> {
  /** Everything applied so far, to decide the next command against. Read only; not after `finish`. */
  readonly state: S;
  /** Evolves the draft by the next event; throws (and the draft is then unusable) as `evolve`. */
  apply(logged: Logged<E>): void;
  /** The frozen state with every event applied. */
  finish(): S;
}

/**
 * A domain as one value, in the shape of emmett's Decider (`{ initialState, decide, evolve }`):
 * a command is decided against a state into the event to log (or refused), and a logged event
 * evolves a state into the next. Everything a node does to its state is these two steps: the
 * primary decides and evolves; a standby only evolves, by the same rules, so both reach the same
 * state for the same log. The node runs any decider (src/node/nodeDomain.ts); the metadata's is
 * {@link metadataDecider}.
 *
 * Two members go past emmett's three, for speed only: `evolveAll` (a batch at once) and `draft`
 * (decide and evolve a batch without freezing after each event). Each gives exactly the state
 * `evolve` one event at a time would.
 */
export interface Decider<S extends LogState, C, E> {
  /** The state before any event: appliedSeq 0, epoch 0. Frozen. */
  initialState(): S;
  /**
   * Validates `command` (any value: it may come from the wire) and checks it against `state`:
   * the event to log (carrying every choice it made) or the refusal naming the field or the
   * conflict. Pure: `state` is never changed, and the same command, state and context give the
   * same decision.
   */
  decide(command: C, state: S, ctx: DecideContext): DecisionOf<E>;
  /**
   * The next state: `state` with the logged event applied. Returns a new frozen state and leaves
   * `state` valid and unchanged. Throws `FoldError`, changing nothing, when the event is out of
   * sequence (`event.seq !== state.appliedSeq + 1`) or contradicts the state; an event that
   * `decide` returned for that state, logged at the next seq, never does.
   */
  evolve(state: S, event: Logged<E>): S;
  /** `evolve` over consecutive events, all or nothing: the same state, faster. */
  evolveAll(state: S, events: readonly Logged<E>[]): S;
  /**
   * A draft of the next state from `state`: `apply` evolves it one event at a time, `state`
   * reads it between events (to decide the next command against), `finish` freezes it once.
   */
  draft(state: S): Draft<S, E>;
}

/** The metadata domain's decider type. */
export interface MetadataDecider extends Decider<MetadataState, Command, MetadataEvent> {
  decide(command: Command, state: MetadataState, ctx: DecideContext): Decision;
  draft(state: MetadataState): FoldDraft;
}

/** The metadata domain's decider: decide.ts's rules to decide, the fold's to evolve. */
export const metadataDecider: MetadataDecider = Object.freeze({
  initialState: emptyState,
  decide: (command: Command, state: MetadataState, ctx: DecideContext): Decision =>
    decide(state, command, ctx),
  evolve: fold,
  evolveAll: foldAll,
  draft: (state: MetadataState): FoldDraft => new FoldDraft(state),
});
