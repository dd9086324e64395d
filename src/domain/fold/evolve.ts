import type { MetadataEvent, ObjectRecord, Replica, Segment } from '../model/types.ts';
import { allocateReplica, releaseReplica } from './replicaSpace.ts';
import { WorkingState } from './workingState.ts';

/**
 * The per-event rules: what each logged event does to the state, one case per row of the
 * design's table of events. The event carries every decision (placement, the keys evicted),
 * so a rule only checks that the event fits the state (else `working.fail`, a FoldError) and
 * applies it. `working` is the copy-on-write draft (workingState.ts); the log's bookkeeping
 * around each event (sequence, logged time, the session table) is fold.ts's.
 */
export function evolve(working: WorkingState, event: MetadataEvent, seq: number): void {
  const root = working.root;
  switch (event.op) {
    case 'MOUNT_SEGMENT': {
      if (working.getSegment(event.segmentId) !== undefined)
        working.fail(`segment ${event.segmentId} exists`);
      const base = event.base ?? 0;
      working.addSegment({
        id: event.segmentId,
        nodeId: event.nodeId,
        ...(base > 0 ? { base } : {}),
        size: event.size,
        used: 0,
        free: [{ offset: base, length: event.size }],
      });
      root.capacity += event.size;
      return;
    }
    case 'UNMOUNT_SEGMENT': {
      // Drops the replicas on it; objects left with none disappear.
      const segment = working.getSegment(event.segmentId);
      if (segment === undefined) working.fail(`segment ${event.segmentId} not mounted`);
      for (const record of working.objectsOn(event.segmentId)) {
        const kept = record.replicas.filter((r) => r.segmentId !== event.segmentId);
        if (kept.length === 0) working.deleteObject(record.key);
        else working.setObject({ ...record, replicas: kept, lastSeq: seq });
      }
      working.deleteSegment(segment.id);
      root.capacity -= segment.size;
      root.used -= segment.used;
      return;
    }
    case 'PUT_START': {
      // The primary chose the placement; the event carries it.
      const index = WorkingState.bucketIndex(event.key);
      if (working.getObject(event.key, index) !== undefined)
        working.fail(`object ${JSON.stringify(event.key)} exists`);
      const nodes = new Set<string>();
      const replicas: Replica[] = [];
      for (const replica of event.replicas) {
        if (replica.status !== 'processing') working.fail('a new replica must be processing');
        if (replica.length !== event.size)
          working.fail('replica length differs from the object size');
        if (nodes.has(replica.nodeId)) working.fail(`two replicas on node ${replica.nodeId}`);
        nodes.add(replica.nodeId);
        replicas.push(copyReplica(replica, 'processing', allocateReplica(working, replica)));
      }
      if (event.replicas.length === 0) working.fail('an object needs a replica');
      working.setObject(
        {
          key: event.key,
          size: event.size,
          replicas,
          lastSeq: seq,
        },
        index,
      );
      root.objectCount += 1;
      return;
    }
    case 'PUT_END': {
      // The replicas become complete.
      const index = WorkingState.bucketIndex(event.key);
      const record = existing(working, event.key, index);
      if (record.replicas.every((r) => r.status === 'complete'))
        working.fail('put already complete');
      working.setObject(
        {
          ...record,
          replicas: record.replicas.map((r) => copyReplica(r, 'complete')),
          lastSeq: seq,
        },
        index,
      );
      return;
    }
    case 'PUT_REVOKE': {
      // Frees the ranges.
      const index = WorkingState.bucketIndex(event.key);
      const record = existing(working, event.key, index);
      if (record.replicas.every((r) => r.status === 'complete'))
        working.fail('put already complete');
      dropObject(working, record, index);
      return;
    }
    case 'REMOVE': {
      const index = WorkingState.bucketIndex(event.key);
      const record = existing(working, event.key, index);
      if (record.replicas.some((r) => r.status === 'processing')) working.fail('put in progress');
      dropObject(working, record, index);
      return;
    }
    case 'EVICTION': {
      // The keys the primary chose.
      for (const key of event.keys) {
        const index = WorkingState.bucketIndex(key);
        const record = existing(working, key, index);
        if (record.replicas.some((r) => r.status === 'processing'))
          working.fail(`evicting ${key}: put in progress`);
        dropObject(working, record, index);
      }
      return;
    }
    case 'EPOCH': {
      // A new primary's fence.
      if (event.epoch <= root.epoch)
        working.fail(`epoch ${event.epoch} is not above ${root.epoch}`);
      root.epoch = event.epoch;
      root.epochNodeId = event.nodeId;
      return;
    }
  }
}

/** The record of `key` (in bucket `index`); refuses the event when there is none. */
function existing(working: WorkingState, key: string, index: number): ObjectRecord {
  const record = working.getObject(key, index);
  if (record === undefined) working.fail(`object ${JSON.stringify(key)} not found`);
  return record;
}

/** Frees every replica's range and deletes the record. */
function dropObject(working: WorkingState, record: ObjectRecord, index?: number): void {
  for (const replica of record.replicas) releaseReplica(working, replica);
  working.deleteObject(record.key, index);
}

/**
 * A plain copy of a replica (the state never aliases the caller's event objects). Given its
 * `segment`, it names the segment and node with the segment's own strings, not the copies its
 * event was decoded with: a million replicas of one segment then share two strings (less heap
 * per object where ids are over 10 characters, which JSON.parse does not share; digests read
 * fewer cache lines).
 */
function copyReplica(r: Replica, status: Replica['status'] = r.status, segment?: Segment): Replica {
  return Object.freeze({
    segmentId: segment?.id ?? r.segmentId,
    nodeId: segment?.nodeId ?? r.nodeId,
    offset: r.offset,
    length: r.length,
    status,
  });
}
