/**
 * Samples the chatty machine events. A follower reports `oplog.progress` about five times a
 * second on every node, even when idle: ~95 % of all inspection events. The sampler passes at
 * most one of them per interval and per actor, and never one that changes the state value;
 * each passed one carries `folded`: how many were held back since the previous one (their
 * values are in its snapshot, the latest). Nothing is dropped without being counted, and the
 * last one held back is passed before the next other event, so a timeline always shows the
 * progress just before each transition.
 */
import type { InspectionRecord } from './inspectionRecord.ts';

/** Machine event types that are sampled. */
export const CHATTY_EVENTS: ReadonlySet<string> = new Set(['oplog.progress']);

/** The default: at most one `oplog.progress` per second per node. */
export const DEFAULT_SAMPLE_INTERVAL_MS = 1000;

interface ActorState {
  /** The chatty `@xstate.event` waiting for its snapshot. */
  pendingEvent: InspectionRecord | undefined;
  /** The latest held-back pair (event and snapshot), passed before the next other record. */
  held: InspectionRecord[];
  /** Chatty events held back since the last one passed. */
  folded: number;
  lastPassedAt: number;
  /** JSON of the state value last passed. */
  lastValue: string | undefined;
}

function isChatty(record: InspectionRecord): boolean {
  return (
    (record.type === '@xstate.event' || record.type === '@xstate.snapshot') &&
    record.event !== undefined &&
    CHATTY_EVENTS.has(record.event.type)
  );
}

export class ProgressSampler {
  readonly #actors = new Map<string, ActorState>();

  constructor(
    private readonly emit: (record: InspectionRecord) => void,
    private readonly intervalMs = DEFAULT_SAMPLE_INTERVAL_MS,
  ) {}

  /** Takes the next record (in order), passing it on now, later, or folded into a later one. */
  push(record: InspectionRecord): void {
    const actor = this.#actor(record.sessionId);
    const at = Number(record.createdAt);
    if (!isChatty(record)) {
      this.#flush(actor);
      if (record.snapshot?.value !== undefined)
        actor.lastValue = JSON.stringify(record.snapshot.value);
      this.emit(record);
      return;
    }
    if (record.type === '@xstate.event') {
      // A chatty event whose snapshot never came is counted, not passed.
      if (actor.pendingEvent !== undefined) actor.folded++;
      actor.pendingEvent = record;
      return;
    }
    const pair = actor.pendingEvent === undefined ? [record] : [actor.pendingEvent, record];
    actor.pendingEvent = undefined;
    const value = JSON.stringify(record.snapshot?.value);
    if (value !== actor.lastValue || at - actor.lastPassedAt >= this.intervalMs) {
      // The one held back is superseded by this one, which stands for it.
      if (actor.held.length > 0) actor.folded++;
      actor.held = [];
      this.#pass(actor, pair, at);
      actor.lastValue = value;
      return;
    }
    if (actor.held.length > 0) actor.folded++;
    actor.held = pair;
  }

  /** Passes every record held back (at the end of a recording or stream). */
  flush(): void {
    for (const actor of this.#actors.values()) this.#flush(actor);
  }

  #flush(actor: ActorState): void {
    if (actor.held.length === 0) return;
    const held = actor.held;
    actor.held = [];
    this.#pass(actor, held, Number(held[held.length - 1]?.createdAt ?? 0));
  }

  #pass(actor: ActorState, records: readonly InspectionRecord[], at: number): void {
    const folded = actor.folded;
    actor.folded = 0;
    actor.lastPassedAt = at;
    records.forEach((r, i) => this.emit(i === 0 && folded > 0 ? { ...r, folded } : r));
  }

  #actor(sessionId: string): ActorState {
    let actor = this.#actors.get(sessionId);
    if (actor === undefined) {
      actor = {
        pendingEvent: undefined,
        held: [],
        folded: 0,
        lastPassedAt: Number.NEGATIVE_INFINITY,
        lastValue: undefined,
      };
      this.#actors.set(sessionId, actor);
    }
    return actor;
  }
}
