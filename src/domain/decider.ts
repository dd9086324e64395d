import { decide, type DecideContext, type Decision } from './decide/decide.ts';
import { fold, FoldDraft, foldAll } from './fold/fold.ts';
import { emptyState } from './model/state.ts';
import type { Command, LoggedEvent, MetadataState } from './model/types.ts';

export type { DecideContext, Decision } from './decide/decide.ts';
export { FoldError, type FoldDraft } from './fold/fold.ts';

/**
 * The domain as one value, in the shape of emmett's Decider (`{ initialState, decide, evolve }`):
 * a command is decided against a state into the event to log (or refused), and a logged event
 * evolves a state into the next. Everything a node does to the metadata is these two steps:
 * the primary decides and evolves; a standby only evolves, by the same rules, so both reach
 * the same state for the same log.
 *
 * Two members go past emmett's three, for speed only: `evolveAll` (a batch at once) and
 * `draft` (decide and evolve a batch without freezing after each event). Each gives exactly
 * the state `evolve` one event at a time would.
 */
export interface MetadataDecider {
  /** The state before any event: appliedSeq 0, epoch 0, nothing mounted or stored. Frozen. */
  initialState(): MetadataState;
  /**
   * Validates `command` (any value: it may come from the wire) and checks it against `state`:
   * the event to log (carrying every choice, such as placement) or the refusal, a
   * `DomainError` naming the field or the conflict. Pure: `state` is never changed, and the
   * same command, state and context give the same decision.
   */
  decide(command: Command, state: MetadataState, ctx: DecideContext): Decision;
  /**
   * The next state: `state` with the logged event applied (its rule, the logged time, the
   * client's result in its session, the session sweep). Returns a new frozen state and leaves
   * `state` valid and unchanged. Throws `FoldError`, changing nothing, when the event is out of
   * sequence (`event.seq !== state.appliedSeq + 1`) or contradicts the state; an event that
   * `decide` returned for that state, logged at the next seq, never does.
   */
  evolve(state: MetadataState, event: LoggedEvent): MetadataState;
  /** `evolve` over consecutive events, all or nothing: the same state, faster. */
  evolveAll(state: MetadataState, events: readonly LoggedEvent[]): MetadataState;
  /**
   * A draft of the next state from `state`: `apply` evolves it one event at a time, `state`
   * reads it between events (to decide the next command against), `finish` freezes it once.
   */
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
