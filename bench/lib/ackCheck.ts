// The failover bench's end-of-run checks: every acknowledged write is in the cluster as
// acknowledged, and the log is one linear history. The log may be trimmed: checkpoints trim the
// stream below the oldest one kept, so an acknowledgement below its first seq is looked up in
// the state (read back through the client), never assumed lost.
import { startingEpoch } from '../../src/domain/log/admission.ts';
import type { LoggedEvent, ObjectRecord } from '../../src/domain/model/types.ts';
import type { AckRecord } from '../../src/tools/localCluster/workload.ts';

/** Reads `key`'s record as the cluster holds it now; undefined when it has none. */
export type ReadObject = (key: string) => Promise<ObjectRecord | undefined>;

/** What {@link lostAcks} found, and where it looked. */
export interface AckCheck {
  /** Acknowledged writes that are in neither the log nor the state as acknowledged. */
  readonly lost: readonly AckRecord[];
  /** Acknowledgements checked against their log entry. */
  readonly inLog: number;
  /** Acknowledgements below the stream's first seq, checked against the state. */
  readonly inState: number;
}

const placement = (replicas: readonly { segmentId: string; offset: number; length: number }[]) =>
  replicas.map((r) => `${r.segmentId}@${r.offset}+${r.length}`).join();

function matchesEntry(ack: AckRecord, logged: LoggedEvent | undefined): boolean {
  if (logged === undefined || logged.seq !== ack.seq) return false;
  const event = logged.event;
  if (event.op !== (ack.op === 'putStart' ? 'PUT_START' : 'PUT_END')) return false;
  if (event.key !== ack.key) return false;
  if (ack.replicas !== undefined && event.op === 'PUT_START')
    return placement(event.replicas) === placement(ack.replicas);
  return true;
}

/** Whether the record the cluster holds now shows `ack` (the workload never removes a key). */
function matchesState(ack: AckRecord, record: ObjectRecord | undefined): boolean {
  if (record === undefined || record.lastSeq < ack.seq) return false;
  if (ack.op === 'putEnd') return record.replicas.every((r) => r.status === 'complete');
  return ack.replicas === undefined || placement(record.replicas) === placement(ack.replicas);
}

/**
 * Acknowledged writes that are not in the cluster as acknowledged: an ack at or above the first
 * seq of `entries` (the log as read back, perhaps trimmed) is compared with its entry; one below
 * it with the key's record, read through `read` (`concurrency` reads at a time).
 */
export async function lostAcks(
  acks: readonly AckRecord[],
  entries: readonly LoggedEvent[],
  read: ReadObject,
  concurrency = 32,
): Promise<AckCheck> {
  const first = entries[0]?.seq ?? Number.POSITIVE_INFINITY;
  const lost: AckRecord[] = [];
  const below = new Map<string, AckRecord[]>();
  let inLog = 0;
  for (const ack of acks) {
    if (ack.seq >= first) {
      inLog++;
      if (!matchesEntry(ack, entries[ack.seq - first])) lost.push(ack);
    } else below.set(ack.key, [...(below.get(ack.key) ?? []), ack]);
  }
  const keys = [...below.keys()];
  for (let i = 0; i < keys.length; i += concurrency) {
    await Promise.all(
      keys.slice(i, i + concurrency).map(async (key) => {
        const record = await read(key);
        for (const ack of below.get(key) ?? []) if (!matchesState(ack, record)) lost.push(ack);
      }),
    );
  }
  return { lost, inLog, inState: acks.length - inLog };
}

/**
 * Breaks of the one linear history in `entries` (from the stream's first seq on): seq gaps,
 * epochs going back, epochs not opened by an EPOCH fence. A trimmed stream starts inside a term:
 * its first entry's epoch is the current one (as a node reading it takes it).
 */
export function historyBreaks(entries: readonly LoggedEvent[]): number {
  const head = entries[0];
  if (head === undefined) return 0;
  let breaks = 0;
  let epoch = startingEpoch(head);
  entries.forEach((logged, i) => {
    if (logged.seq !== head.seq + i) breaks++;
    if (logged.epoch < epoch) breaks++;
    if (logged.epoch > epoch) {
      if (logged.event.op !== 'EPOCH') breaks++;
      epoch = logged.epoch;
    }
  });
  return breaks;
}
