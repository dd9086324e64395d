// Synthetic writes for the benchmarks that need a large state: N objects of OBJECT_SIZE bytes,
// REPLICAS replicas each, placed one after the other on SEGMENTS segments.
import { foldAll } from '../../src/domain/fold/fold.ts';
import type {
  LoggedEvent,
  MetadataEvent,
  MetadataState,
  Replica,
} from '../../src/domain/model/types.ts';

export const SEGMENTS = 8;
export const REPLICAS = 2;
export const OBJECT_SIZE = 4096;
export const SEGMENT_SIZE = 2 ** 44;

export class SyntheticWrites {
  readonly #next = new Array<number>(SEGMENTS).fill(0);
  #created = 0;

  mounts(): MetadataEvent[] {
    return Array.from({ length: SEGMENTS }, (_, g) => ({
      op: 'MOUNT_SEGMENT' as const,
      segmentId: `segment-${g}`,
      nodeId: `node-${g}`,
      size: SEGMENT_SIZE,
    }));
  }

  objects(n: number): MetadataEvent[] {
    const events: MetadataEvent[] = [];
    for (let k = 0; k < n; k++) {
      const i = this.#created++;
      const replicas: Replica[] = [];
      for (let r = 0; r < REPLICAS; r++) {
        const g = (i + r) % SEGMENTS;
        const offset = this.#next[g] ?? 0;
        this.#next[g] = offset + OBJECT_SIZE;
        replicas.push({
          segmentId: `segment-${g}`,
          nodeId: `node-${g}`,
          offset,
          length: OBJECT_SIZE,
          status: 'processing',
        });
      }
      const key = `bench/object/${i.toString(36)}`;
      events.push({ op: 'PUT_START', key, size: OBJECT_SIZE, replicas });
      events.push({ op: 'PUT_END', key });
    }
    return events;
  }
}

/** `events` as the log entries that follow `state`. */
export function logAfter(state: MetadataState, events: readonly MetadataEvent[]): LoggedEvent[] {
  return events.map((event, i) => ({ seq: state.appliedSeq + i + 1, epoch: 1, ts: 0, event }));
}

export function foldEvents(state: MetadataState, events: readonly MetadataEvent[]): MetadataState {
  return foldAll(state, logAfter(state, events));
}
