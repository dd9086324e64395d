/**
 * A node's inspection feed: XState's inspection events of the node's actors become
 * {@link InspectionRecord}s named by node, with `oplog.progress` sampled, and go to every
 * subscriber (the `/inspect/events` stream, the flight recorder, `--inspect`). With no
 * subscriber it costs one check per event.
 */
import type { InspectionEvent, Observer } from 'xstate';
import {
  actorRecord,
  toInspectionRecord,
  type InspectedActor,
  type InspectionRecord,
} from './inspectionRecord.ts';
import { DEFAULT_SAMPLE_INTERVAL_MS, ProgressSampler } from './progressSampler.ts';

export interface NodeInspectionOptions {
  readonly nodeId: string;
  /** The node's clock (ms since the epoch): records are stamped with it. */
  readonly now: () => number;
  /** At most one `oplog.progress` per this many ms per actor (default 1000). */
  readonly sampleIntervalMs?: number;
}

/** Receives each record in order. */
export type InspectionListener = (record: InspectionRecord) => void;

export class NodeInspection {
  readonly #listeners = new Set<InspectionListener>();
  readonly #sampler: ProgressSampler;
  #root: InspectedActor | undefined;

  constructor(private readonly options: NodeInspectionOptions) {
    this.#sampler = new ProgressSampler((record) => {
      for (const listener of this.#listeners) listener(record);
    }, options.sampleIntervalMs ?? DEFAULT_SAMPLE_INTERVAL_MS);
  }

  /** Pass to `createActor(machine, { inspect })`. */
  readonly inspect: Observer<InspectionEvent> = {
    next: (event) => {
      const actor = event.actorRef as unknown as InspectedActor;
      if (event.type === '@xstate.actor' && actor._parent === undefined) this.#root = actor;
      if (this.#listeners.size === 0) return;
      const record = toInspectionRecord(event, this.options.nodeId, this.options.now());
      if (record !== undefined) this.#sampler.push(record);
    },
  };

  /**
   * What a new subscriber needs first: the root actor (its definition and its snapshot now).
   * Empty before the machine starts.
   */
  current(): InspectionRecord[] {
    const root = this.#root;
    if (root === undefined) return [];
    return [actorRecord(this.options.nodeId, root, root.sessionId, this.options.now())];
  }

  /** Calls `listener` with every record from now on; returns the unsubscribe function. */
  subscribe(listener: InspectionListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Passes the records the sampler holds back (before a recording is closed). */
  flush(): void {
    this.#sampler.flush();
  }
}
