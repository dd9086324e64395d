// The one freeze helper the fold, the snapshot builder and repair share (domain/model/freeze.ts):
// what each of them relies on.
import { describe, expect, it } from 'vitest';
import {
  freezeRecord,
  frozenCopyOfRecord,
  frozenCopyOfSegment,
  frozenCopyOfSession,
} from '../../src/domain/model/freeze.ts';
import type { ObjectRecord, SessionRecord } from '../../src/domain/model/types.ts';

const record = (): ObjectRecord => ({
  key: 'k',
  size: 8,
  lastSeq: 3,
  replicas: [{ segmentId: 's', nodeId: 'n', offset: 0, length: 8, status: 'complete' }],
});

describe('freeze helpers', () => {
  it('freezeRecord freezes a record, its replica list and each replica in place', () => {
    const r = record();
    expect(freezeRecord(r)).toBe(r);
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.replicas)).toBe(true);
    expect(Object.isFrozen(r.replicas[0])).toBe(true);
    expect(freezeRecord(r)).toBe(r);
  });

  it('frozenCopyOfRecord copies exactly the fields of a record, deeply frozen, aliasing nothing', () => {
    const input = { ...record(), leaseUntil: 99 } as ObjectRecord;
    const copy = frozenCopyOfRecord(input);
    expect(copy).not.toBe(input);
    expect(copy).toEqual(record());
    expect(copy.replicas).not.toBe(input.replicas);
    expect(copy.replicas[0]).not.toBe(input.replicas[0]);
    expect(Object.isFrozen(copy) && Object.isFrozen(copy.replicas)).toBe(true);
    expect(Object.isFrozen(copy.replicas[0])).toBe(true);
  });

  it('frozenCopyOfSegment and frozenCopyOfSession copy deeply and freeze', () => {
    const segment = { id: 's', nodeId: 'n', size: 64, used: 8, free: [{ offset: 8, length: 56 }] };
    const seg = frozenCopyOfSegment(segment);
    expect(seg).toEqual(segment);
    expect(Object.isFrozen(seg.free) && Object.isFrozen(seg.free[0])).toBe(true);
    const session: SessionRecord = {
      sessionId: 'a'.repeat(32),
      oldestPending: 2,
      lastSeq: 5,
      lastTs: 1000,
      results: [
        { requestNo: 1, seq: 4, op: 'PUT_END', key: 'k' },
        { requestNo: 2, seq: 5, op: 'PUT_START', key: 'j', replicas: record().replicas },
      ],
    };
    const s = frozenCopyOfSession(session);
    expect(s).toEqual(session);
    expect(s.results[1]?.replicas).not.toBe(session.results[1]?.replicas);
    expect(Object.isFrozen(s.results) && Object.isFrozen(s.results[1]?.replicas?.[0])).toBe(true);
  });
});
