/**
 * An in-memory flight recorder for the simulation: keeps a node's raw inspection events (by
 * reference: snapshots are immutable) and converts them to records only when asked, so a
 * passing schedule pays almost nothing. Bounded: the oldest events go first, but never a root
 * actor's start, so what is kept can always be replayed.
 */
import type { InspectionEvent, Observer } from 'xstate';
import { toInspectionRecord, type InspectionRecord } from './inspectionRecord.ts';
import { ProgressSampler } from './progressSampler.ts';

interface Taped {
  readonly event: InspectionEvent;
  readonly at: number;
  readonly root: boolean;
}

export class InspectionTape {
  #taped: Taped[] = [];

  constructor(
    readonly nodeId: string,
    private readonly now: () => number,
    /** Most events kept (root actor starts are kept besides). */
    private readonly limit = 4000,
  ) {}

  readonly inspect: Observer<InspectionEvent> = {
    next: (event) => {
      if (event.type === '@xstate.microstep' || event.type === '@xstate.action') return;
      const root =
        event.type === '@xstate.actor' &&
        (event.actorRef as { _parent?: unknown })._parent === undefined;
      this.#taped.push({
        event,
        at: this.now(),
        root,
      });
      if (this.#taped.length > this.limit * 2) {
        const cut = this.#taped.length - this.limit;
        this.#taped = [
          ...this.#taped.slice(0, cut).filter((t) => t.root),
          ...this.#taped.slice(cut),
        ];
      }
    },
  };

  /** The events kept, as sampled records (what `--record` would have written). */
  records(): InspectionRecord[] {
    const out: InspectionRecord[] = [];
    const sampler = new ProgressSampler((record) => out.push(record));
    for (const t of this.#taped) {
      const record = toInspectionRecord(t.event, this.nodeId, t.at);
      if (record !== undefined) sampler.push(record);
    }
    sampler.flush();
    return out;
  }
}

/** Several nodes' records on one timeline, as NDJSON (what `inspect --replay` reads). */
export function recordingText(tapes: readonly InspectionTape[]): string {
  const all = tapes.flatMap((tape, t) =>
    tape.records().map((record, i) => ({ record, key: [Number(record.createdAt), t, i] })),
  );
  all.sort(
    (a, b) =>
      (a.key[0] ?? 0) - (b.key[0] ?? 0) ||
      (a.key[1] ?? 0) - (b.key[1] ?? 0) ||
      (a.key[2] ?? 0) - (b.key[2] ?? 0),
  );
  return all.map((a) => `${JSON.stringify(a.record)}\n`).join('');
}
