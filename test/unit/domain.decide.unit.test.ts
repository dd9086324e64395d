import { describe, expect, it } from 'vitest';
import { decide, type DecideContext } from '../../src/domain/decide/decide.ts';
import { DomainError, ObjectExistsError } from '../../src/domain/model/errors.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import {
  MAX_KEY_BYTES,
  MAX_OBJECT_SIZE,
  MAX_REPLICAS,
  MAX_SEGMENT_SIZE,
} from '../../src/domain/model/limits.ts';
import { emptyState, getObject, getSegment } from '../../src/domain/model/state.ts';
import type { Command, MetadataEvent, MetadataState } from '../../src/domain/model/types.ts';
import { runCommands } from '../fixtures/runCommands.ts';

const free: DecideContext = { isReadLeased: () => false };

function run(state: MetadataState, commands: readonly Command[], ctx = free): MetadataState {
  return runCommands(state, commands, { ctx, ts: 1000 });
}

function accepted(state: MetadataState, command: Command, ctx = free): MetadataEvent {
  const d = decide(state, command, ctx);
  if (!d.ok) throw d.error;
  return d.event;
}

function rejected(state: MetadataState, command: unknown, ctx = free): DomainError {
  const d = decide(state, command as Command, ctx);
  if (d.ok) throw new Error(`expected a rejection, got ${JSON.stringify(d.event)}`);
  expect(d.error).toBeInstanceOf(DomainError);
  expect(d.error.retryable).toBe(false);
  return d.error;
}

const twoNodes = run(emptyState(), [
  { type: 'mountSegment', segmentId: 's1', nodeId: 'n1', size: 1000 },
  { type: 'mountSegment', segmentId: 's2', nodeId: 'n2', size: 1000 },
]);

describe('mountSegment', () => {
  it('logs MOUNT_SEGMENT and the fold adds the segment', () => {
    const event = accepted(emptyState(), {
      type: 'mountSegment',
      segmentId: 's',
      nodeId: 'n',
      size: 10,
    });
    expect(event).toEqual({ op: 'MOUNT_SEGMENT', segmentId: 's', nodeId: 'n', size: 10 });
    expect(getSegment(twoNodes, 's1')).toMatchObject({
      id: 's1',
      nodeId: 'n1',
      size: 1000,
      used: 0,
    });
    expect(twoNodes.capacity).toBe(2000);
  });
  it('refuses a mounted id with SEGMENT_EXISTS', () => {
    const e = rejected(twoNodes, { type: 'mountSegment', segmentId: 's1', nodeId: 'n9', size: 10 });
    expect(e.code).toBe('SEGMENT_EXISTS');
  });
  it.each([
    [{ segmentId: '', nodeId: 'n', size: 1 }, 'segmentId'],
    [{ segmentId: 'x'.repeat(257), nodeId: 'n', size: 1 }, 'segmentId'],
    [{ segmentId: 's', nodeId: '', size: 1 }, 'nodeId'],
    [{ segmentId: 's', nodeId: 7, size: 1 }, 'nodeId'],
    [{ segmentId: 's', nodeId: 'n', size: 0 }, 'size'],
    [{ segmentId: 's', nodeId: 'n', size: 1.5 }, 'size'],
    [{ segmentId: 's', nodeId: 'n', size: MAX_SEGMENT_SIZE + 1 }, 'size'],
    [{ segmentId: 's', nodeId: 'n', size: '10' }, 'size'],
  ])('validates %j (field %s)', (fields, field) => {
    const e = rejected(emptyState(), { type: 'mountSegment', ...fields });
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.field).toBe(field);
  });
});

describe('unmountSegment', () => {
  it('drops replicas on it; objects left with none disappear', () => {
    const s = run(twoNodes, [
      { type: 'putStart', key: 'both', size: 10, replicaNum: 2 },
      { type: 'putStart', key: 'one', size: 10, replicaNum: 1 },
      { type: 'putEnd', key: 'both' },
    ]);
    expect(getObject(s, 'one')?.replicas.map((r) => r.segmentId)).toEqual(['s1']);
    const event = accepted(s, { type: 'unmountSegment', segmentId: 's1' });
    expect(event).toEqual({ op: 'UNMOUNT_SEGMENT', segmentId: 's1' });
    const after = fold(s, { seq: s.appliedSeq + 1, epoch: 1, ts: 0, event });
    expect(getSegment(after, 's1')).toBeUndefined();
    expect(getObject(after, 'one')).toBeUndefined();
    expect(getObject(after, 'both')?.replicas.map((r) => r.segmentId)).toEqual(['s2']);
    expect(getObject(after, 'both')?.lastSeq).toBe(after.appliedSeq);
    expect(after.objectCount).toBe(1);
    expect(after.capacity).toBe(1000);
    expect(after.used).toBe(10);
  });
  it('refuses an unknown segment with SEGMENT_NOT_FOUND', () => {
    expect(rejected(twoNodes, { type: 'unmountSegment', segmentId: 'nope' }).code).toBe(
      'SEGMENT_NOT_FOUND',
    );
  });
  it('validates segmentId', () => {
    const e = rejected(twoNodes, { type: 'unmountSegment', segmentId: 3 });
    expect([e.code, e.field]).toEqual(['INVALID_ARGUMENT', 'segmentId']);
  });
});

describe('putStart', () => {
  it('places replicas on distinct nodes, processing, first fit', () => {
    const event = accepted(twoNodes, { type: 'putStart', key: 'k', size: 100, replicaNum: 2 });
    expect(event).toEqual({
      op: 'PUT_START',
      key: 'k',
      size: 100,
      replicas: [
        { segmentId: 's1', nodeId: 'n1', offset: 0, length: 100, status: 'processing' },
        { segmentId: 's2', nodeId: 'n2', offset: 0, length: 100, status: 'processing' },
      ],
    });
    const s = run(twoNodes, [
      { type: 'putStart', key: 'a', size: 100, replicaNum: 1 },
      { type: 'putStart', key: 'b', size: 50, replicaNum: 1 },
    ]);
    expect(getObject(s, 'b')?.replicas[0]).toMatchObject({ segmentId: 's1', offset: 100 });
    expect(getSegment(s, 's1')?.used).toBe(150);
  });
  it('never puts two replicas on one node', () => {
    const s = run(emptyState(), [
      { type: 'mountSegment', segmentId: 'a', nodeId: 'n1', size: 100 },
      { type: 'mountSegment', segmentId: 'b', nodeId: 'n1', size: 100 },
    ]);
    expect(rejected(s, { type: 'putStart', key: 'k', size: 10, replicaNum: 2 }).code).toBe(
      'NOT_ENOUGH_NODES',
    );
  });
  it('refuses an existing key with ObjectExistsError carrying the placement', () => {
    const s = run(twoNodes, [{ type: 'putStart', key: 'k', size: 10, replicaNum: 1 }]);
    const e = rejected(s, { type: 'putStart', key: 'k', size: 10, replicaNum: 1 });
    expect(e).toBeInstanceOf(ObjectExistsError);
    expect((e as ObjectExistsError).complete).toBe(false);
    expect((e as ObjectExistsError).placement).toEqual(getObject(s, 'k')?.replicas);
    const done = run(s, [{ type: 'putEnd', key: 'k' }]);
    expect(
      (rejected(done, { type: 'putStart', key: 'k', size: 1, replicaNum: 1 }) as ObjectExistsError)
        .complete,
    ).toBe(true);
  });
  it('NOT_ENOUGH_NODES when fewer nodes have room than replicaNum', () => {
    expect(rejected(twoNodes, { type: 'putStart', key: 'k', size: 10, replicaNum: 3 }).code).toBe(
      'NOT_ENOUGH_NODES',
    );
    expect(
      rejected(emptyState(), { type: 'putStart', key: 'k', size: 10, replicaNum: 1 }).code,
    ).toBe('NOT_ENOUGH_NODES');
  });
  it('NO_SPACE when no range fits', () => {
    expect(rejected(twoNodes, { type: 'putStart', key: 'k', size: 1001, replicaNum: 1 }).code).toBe(
      'NO_SPACE',
    );
    const s = run(twoNodes, [
      { type: 'putStart', key: 'a', size: 600, replicaNum: 2 },
      { type: 'putStart', key: 'b', size: 300, replicaNum: 2 },
      { type: 'putRevoke', key: 'a' },
      { type: 'putStart', key: 'c', size: 500, replicaNum: 2 },
    ]);
    // free ranges: [500,600) and [900,1000) on each segment: 150 bytes fit nowhere.
    expect(rejected(s, { type: 'putStart', key: 'd', size: 150, replicaNum: 1 }).code).toBe(
      'NO_SPACE',
    );
    expect(accepted(s, { type: 'putStart', key: 'd', size: 100, replicaNum: 2 })).toMatchObject({
      replicas: [{ offset: 500 }, { offset: 500 }],
    });
  });
  it.each([
    [{ key: '', size: 1, replicaNum: 1 }, 'key', `1..${MAX_KEY_BYTES} UTF-8 bytes`],
    [{ key: 'é'.repeat(513), size: 1, replicaNum: 1 }, 'key', MAX_KEY_BYTES],
    [{ key: '\uD800', size: 1, replicaNum: 1 }, 'key', undefined],
    [{ key: null, size: 1, replicaNum: 1 }, 'key', undefined],
    [{ key: 'k', size: -1, replicaNum: 1 }, 'size', 1],
    [{ key: 'k', size: MAX_OBJECT_SIZE + 1, replicaNum: 1 }, 'size', MAX_OBJECT_SIZE],
    [{ key: 'k', size: Number.NaN, replicaNum: 1 }, 'size', MAX_OBJECT_SIZE],
    [{ key: 'k', size: 1, replicaNum: 0 }, 'replicaNum', 1],
    [{ key: 'k', size: 1, replicaNum: MAX_REPLICAS + 1 }, 'replicaNum', MAX_REPLICAS],
    [{ key: 'k', size: 1, replicaNum: 1.5 }, 'replicaNum', MAX_REPLICAS],
    [{ key: 'k', size: 1 }, 'replicaNum', undefined],
  ])('validates %j: field %s, limit %s', (fields, field, limit) => {
    const e = rejected(twoNodes, { type: 'putStart', ...fields });
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.field).toBe(field);
    expect(e.limit).toBe(limit);
    expect(e.message).toContain(field);
    if (limit !== undefined) expect(e.message).toContain(String(limit));
  });
  it('accepts a key of exactly MAX_KEY_BYTES UTF-8 bytes', () => {
    accepted(twoNodes, {
      type: 'putStart',
      key: 'é'.repeat(MAX_KEY_BYTES / 2),
      size: 1,
      replicaNum: 1,
    });
  });
});

describe('putEnd, putRevoke, remove', () => {
  const started = run(twoNodes, [{ type: 'putStart', key: 'k', size: 10, replicaNum: 2 }]);
  const complete = run(started, [{ type: 'putEnd', key: 'k' }]);

  it('putEnd makes the replicas complete and records lastSeq', () => {
    expect(accepted(started, { type: 'putEnd', key: 'k' })).toEqual({ op: 'PUT_END', key: 'k' });
    const record = getObject(complete, 'k');
    expect(record?.replicas.every((r) => r.status === 'complete')).toBe(true);
    expect(record?.lastSeq).toBe(complete.appliedSeq);
  });
  it('putEnd: OBJECT_NOT_FOUND, INVALID_STATE when complete', () => {
    expect(rejected(started, { type: 'putEnd', key: 'x' }).code).toBe('OBJECT_NOT_FOUND');
    expect(rejected(complete, { type: 'putEnd', key: 'k' }).code).toBe('INVALID_STATE');
  });
  it('putRevoke frees the ranges', () => {
    const s = run(started, [{ type: 'putRevoke', key: 'k' }]);
    expect(getObject(s, 'k')).toBeUndefined();
    expect(getSegment(s, 's1')?.used).toBe(0);
    expect(getSegment(s, 's1')?.free).toEqual([{ offset: 0, length: 1000 }]);
    expect([s.objectCount, s.used]).toEqual([0, 0]);
  });
  it('putRevoke: OBJECT_NOT_FOUND, INVALID_STATE when complete', () => {
    expect(rejected(started, { type: 'putRevoke', key: 'x' }).code).toBe('OBJECT_NOT_FOUND');
    expect(rejected(complete, { type: 'putRevoke', key: 'k' }).code).toBe('INVALID_STATE');
  });
  it('remove frees a complete object', () => {
    expect(accepted(complete, { type: 'remove', key: 'k' })).toEqual({ op: 'REMOVE', key: 'k' });
    const s = run(complete, [{ type: 'remove', key: 'k' }]);
    expect(getObject(s, 'k')).toBeUndefined();
    expect(s.used).toBe(0);
  });
  it('remove: OBJECT_NOT_FOUND, LEASED, INVALID_STATE while processing', () => {
    expect(rejected(complete, { type: 'remove', key: 'x' }).code).toBe('OBJECT_NOT_FOUND');
    const leased = { isReadLeased: (key: string) => key === 'k' };
    expect(rejected(complete, { type: 'remove', key: 'k' }, leased).code).toBe('LEASED');
    expect(rejected(started, { type: 'remove', key: 'k' }).code).toBe('INVALID_STATE');
  });
  it.each(['putEnd', 'putRevoke', 'remove'])('%s validates the key', (type) => {
    const e = rejected(complete, { type, key: 'x'.repeat(MAX_KEY_BYTES + 1) });
    expect([e.code, e.field, e.limit]).toEqual(['INVALID_ARGUMENT', 'key', MAX_KEY_BYTES]);
  });
});

describe('any input', () => {
  it.each([null, 3, 'putEnd', [], {}, { type: 'drop' }, { type: 'toString' }])(
    'refuses %j',
    (command) => {
      const e = rejected(twoNodes, command);
      expect(e.code).toBe('INVALID_ARGUMENT');
    },
  );
  it('a refusal leaves the state untouched (same object, frozen)', () => {
    const before = twoNodes;
    rejected(before, { type: 'putStart', key: 'k', size: 5000, replicaNum: 1 });
    expect(before).toBe(twoNodes);
    expect(Object.isFrozen(before)).toBe(true);
  });
});
