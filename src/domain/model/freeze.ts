/**
 * Freezing the state's values: one helper per kind, used by the fold, the snapshot builder and
 * repair. A state is deeply frozen, so it can be read (verification, full sync, digests) while
 * the next one is built, and nothing a caller holds can change it.
 */
import type { ObjectRecord, Replica, Segment, SessionRecord } from './types.ts';

function frozenReplica(replica: Replica): Replica {
  return Object.freeze({
    segmentId: replica.segmentId,
    nodeId: replica.nodeId,
    offset: replica.offset,
    length: replica.length,
    status: replica.status,
  });
}

/**
 * Freezes `record`, its replica list and each replica in place and returns it (already frozen
 * values are left as they are). For records the caller owns, e.g. just decoded or just built.
 */
export function freezeRecord(record: ObjectRecord): ObjectRecord {
  if (Object.isFrozen(record)) return record;
  for (const replica of record.replicas) if (!Object.isFrozen(replica)) Object.freeze(replica);
  Object.freeze(record.replicas);
  return Object.freeze(record);
}

/**
 * A frozen copy of `record` with exactly a record's fields (anything else is dropped): for
 * records that arrive from elsewhere, which the state must not alias.
 */
export function frozenCopyOfRecord(record: ObjectRecord): ObjectRecord {
  return Object.freeze({
    key: record.key,
    size: record.size,
    replicas: Object.freeze(record.replicas.map(frozenReplica)),
    lastSeq: record.lastSeq,
  });
}

/** A frozen copy of `segment` with exactly a segment's fields, its free list copied. */
export function frozenCopyOfSegment(segment: Segment): Segment {
  return Object.freeze({
    id: segment.id,
    nodeId: segment.nodeId,
    ...(segment.base !== undefined && segment.base > 0 ? { base: segment.base } : {}),
    size: segment.size,
    used: segment.used,
    free: Object.freeze(
      segment.free.map((f) => Object.freeze({ offset: f.offset, length: f.length })),
    ),
  });
}

/** A frozen copy of `session` with exactly a session's fields, its results copied. */
export function frozenCopyOfSession(session: SessionRecord): SessionRecord {
  return Object.freeze({
    sessionId: session.sessionId,
    oldestPending: session.oldestPending,
    lastSeq: session.lastSeq,
    lastTs: session.lastTs,
    results: Object.freeze(
      session.results.map((r) =>
        Object.freeze(
          r.replicas === undefined
            ? { requestNo: r.requestNo, seq: r.seq, op: r.op, key: r.key }
            : {
                requestNo: r.requestNo,
                seq: r.seq,
                op: r.op,
                key: r.key,
                replicas: Object.freeze(r.replicas.map(frozenReplica)),
              },
        ),
      ),
    ),
  });
}
