import { describe, expect, it } from 'vitest';
import {
  objectChecksum,
  prefixHash,
  shardDigest,
  stateDigest,
} from '../../src/domain/log/checksum.ts';
import type { DecideContext } from '../../src/domain/decide/decide.ts';
import { DEFAULT_EVICTION_POLICY, decideEviction } from '../../src/domain/decide/eviction.ts';
import { fold, foldAll, FoldError } from '../../src/domain/fold/fold.ts';
import { SHARD_COUNT, shardOf } from '../../src/domain/model/shard.ts';
import {
  allObjects,
  emptyState,
  getObject,
  getSegment,
  shardObjects,
} from '../../src/domain/model/state.ts';
import type {
  Command,
  LoggedEvent,
  MetadataEvent,
  MetadataState,
} from '../../src/domain/model/types.ts';
import { runCommands } from '../fixtures/runCommands.ts';

const free: DecideContext = { isReadLeased: () => false };

function run(state: MetadataState, commands: readonly Command[]): MetadataState {
  return runCommands(state, commands, { ctx: free });
}

const at = (state: MetadataState, event: MetadataEvent): LoggedEvent => ({
  seq: state.appliedSeq + 1,
  epoch: 1,
  ts: 0,
  event,
});

const base = run(emptyState(), [
  { type: 'mountSegment', segmentId: 's1', nodeId: 'n1', size: 100 },
  { type: 'mountSegment', segmentId: 's2', nodeId: 'n2', size: 100 },
]);

describe('fold', () => {
  it('refuses an out-of-sequence event with FoldError and changes nothing', () => {
    const event: MetadataEvent = { op: 'EPOCH', epoch: 5, nodeId: 'x' };
    for (const seq of [0, base.appliedSeq, base.appliedSeq + 2]) {
      const error = (() => {
        try {
          fold(base, { seq, epoch: 1, ts: 0, event });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(FoldError);
      expect((error as FoldError).expectedSeq).toBe(base.appliedSeq + 1);
      expect((error as FoldError).gotSeq).toBe(seq);
    }
    expect(base.epoch).toBe(0);
  });

  it.each<[string, MetadataEvent]>([
    ['mount twice', { op: 'MOUNT_SEGMENT', segmentId: 's1', nodeId: 'n1', size: 1 }],
    ['unmount unknown', { op: 'UNMOUNT_SEGMENT', segmentId: 'zz' }],
    ['end unknown', { op: 'PUT_END', key: 'nope' }],
    ['remove unknown', { op: 'REMOVE', key: 'nope' }],
    ['evict unknown', { op: 'EVICTION', keys: ['nope'] }],
    ['epoch not above', { op: 'EPOCH', epoch: 0, nodeId: 'x' }],
    [
      'overlapping range',
      {
        op: 'PUT_START',
        key: 'b',
        size: 10,
        replicas: [{ segmentId: 's1', nodeId: 'n1', offset: 5, length: 10, status: 'processing' }],
      },
    ],
    [
      'wrong node',
      {
        op: 'PUT_START',
        key: 'b',
        size: 10,
        replicas: [{ segmentId: 's1', nodeId: 'n2', offset: 50, length: 10, status: 'processing' }],
      },
    ],
    [
      'two replicas on a node',
      {
        op: 'PUT_START',
        key: 'b',
        size: 10,
        replicas: [
          { segmentId: 's1', nodeId: 'n1', offset: 50, length: 10, status: 'processing' },
          { segmentId: 's1', nodeId: 'n1', offset: 70, length: 10, status: 'processing' },
        ],
      },
    ],
    [
      'past the end',
      {
        op: 'PUT_START',
        key: 'b',
        size: 10,
        replicas: [{ segmentId: 's1', nodeId: 'n1', offset: 95, length: 10, status: 'processing' }],
      },
    ],
  ])('refuses an event that cannot apply: %s', (_name, event) => {
    const s = run(base, [{ type: 'putStart', key: 'a', size: 10, replicaNum: 1 }]);
    expect(() => fold(s, at(s, event))).toThrow(FoldError);
    expect(() =>
      foldAll(s, [
        at(s, { op: 'EPOCH', epoch: 9, nodeId: 'x' }),
        { ...at(s, event), seq: s.appliedSeq + 2 },
      ]),
    ).toThrow(FoldError);
    expect(s.epoch).toBe(0);
  });

  it('leaves the old state valid and unchanged (immutability)', () => {
    const s1 = run(base, [{ type: 'putStart', key: 'a', size: 10, replicaNum: 2 }]);
    const snapshot = JSON.stringify([...allObjects(s1)]);
    const digest = stateDigest(s1);
    const s2 = run(s1, [
      { type: 'putEnd', key: 'a' },
      { type: 'putStart', key: 'b', size: 20, replicaNum: 1 },
      { type: 'unmountSegment', segmentId: 's2' },
    ]);
    expect(JSON.stringify([...allObjects(s1)])).toBe(snapshot);
    expect(stateDigest(s1)).toBe(digest);
    expect(getSegment(s1, 's2')).toBeDefined();
    expect(getSegment(s2, 's2')).toBeUndefined();
    const record = getObject(s2, 'a');
    expect(Object.isFrozen(record)).toBe(true);
    expect(Object.isFrozen(record?.replicas[0])).toBe(true);
    expect(Object.isFrozen(getSegment(s2, 's1')?.free)).toBe(true);
    expect(() => {
      (record as { size: number }).size = 1;
    }).toThrow();
  });

  it('EPOCH folds into state.epoch', () => {
    const s = fold(base, at(base, { op: 'EPOCH', epoch: 7, nodeId: 'nodeA' }));
    expect([s.epoch, s.epochNodeId, s.appliedSeq]).toEqual([7, 'nodeA', base.appliedSeq + 1]);
  });

  it('foldAll equals folding one at a time', () => {
    const events: MetadataEvent[] = [
      {
        op: 'PUT_START',
        key: 'x',
        size: 5,
        replicas: [{ segmentId: 's1', nodeId: 'n1', offset: 0, length: 5, status: 'processing' }],
      },
      { op: 'PUT_END', key: 'x' },
      { op: 'EPOCH', epoch: 3, nodeId: 'n' },
      { op: 'REMOVE', key: 'x' },
    ];
    const logged = events.map((event, i) => ({
      seq: base.appliedSeq + 1 + i,
      epoch: 1,
      ts: 0,
      event,
    }));
    const one = logged.reduce(fold, base);
    const all = foldAll(base, logged);
    expect(stateDigest(all)).toBe(stateDigest(one));
    expect([all.appliedSeq, all.epoch, all.objectCount, all.used]).toEqual([
      one.appliedSeq,
      3,
      0,
      0,
    ]);
    expect(foldAll(base, [])).toBe(base);
  });
});

describe('eviction', () => {
  const full = run(base, [
    { type: 'putStart', key: 'old', size: 40, replicaNum: 2 },
    { type: 'putStart', key: 'mid', size: 30, replicaNum: 2 },
    { type: 'putStart', key: 'new', size: 25, replicaNum: 2 },
    { type: 'putEnd', key: 'mid' },
    { type: 'putEnd', key: 'old' },
    { type: 'putEnd', key: 'new' },
  ]);

  it('is null below the high-water mark', () => {
    expect(decideEviction(base, DEFAULT_EVICTION_POLICY, free)).toBeNull();
    const low = run(base, [
      { type: 'putStart', key: 'a', size: 10, replicaNum: 2 },
      { type: 'putEnd', key: 'a' },
    ]);
    expect(decideEviction(low, DEFAULT_EVICTION_POLICY, free)).toBeNull();
  });
  it('evicts oldest lastSeq first until below the low-water mark', () => {
    // used 190/200 = 0.95 >= 0.9; 'mid' ended first (oldest lastSeq): 190-60 = 130 < 160.
    expect(decideEviction(full, DEFAULT_EVICTION_POLICY, free)).toEqual({
      op: 'EVICTION',
      keys: ['mid'],
    });
    expect(decideEviction(full, { highWater: 0.9, lowWater: 0.3 }, free)).toEqual({
      op: 'EVICTION',
      keys: ['mid', 'old'],
    });
    expect(decideEviction(full, { highWater: 0.9, lowWater: 0.2 }, free)).toEqual({
      op: 'EVICTION',
      keys: ['mid', 'old', 'new'],
    });
  });
  it('skips read-leased and processing objects; null when nothing is evictable', () => {
    const ctx = { isReadLeased: (key: string) => key === 'mid' };
    expect(decideEviction(full, DEFAULT_EVICTION_POLICY, ctx)).toEqual({
      op: 'EVICTION',
      keys: ['old'],
    });
    expect(decideEviction(full, DEFAULT_EVICTION_POLICY, { isReadLeased: () => true })).toBeNull();
    const processing = run(base, [{ type: 'putStart', key: 'p', size: 95, replicaNum: 2 }]);
    expect(decideEviction(processing, DEFAULT_EVICTION_POLICY, free)).toBeNull();
  });
  it('the EVICTION event folds: objects and ranges are freed', () => {
    const event = decideEviction(full, DEFAULT_EVICTION_POLICY, free);
    if (event === null) throw new Error('expected an eviction');
    const s = fold(full, at(full, event));
    expect(getObject(s, 'mid')).toBeUndefined();
    expect(s.used).toBe(130);
  });
});

describe('shards and checksums', () => {
  it('shardOf is stable CRC32 mod 1024', () => {
    expect(SHARD_COUNT).toBe(1024);
    expect(shardOf('hello')).toBe(0x3610a686 % 1024);
    const s = run(base, [{ type: 'putStart', key: 'hello', size: 1, replicaNum: 1 }]);
    expect([...shardObjects(s, shardOf('hello'))].map((r) => r.key)).toEqual(['hello']);
  });
  it('prefixHash is CRC32 of the first 8 UTF-8 bytes', () => {
    expect(prefixHash('abcdefgh-and-more')).toBe(prefixHash('abcdefgh'));
    expect(prefixHash('abcdefgh')).not.toBe(prefixHash('abcdefgX'));
  });
  it('objectChecksum ignores lastSeq and sees size, placement and status', () => {
    const r = {
      key: 'k',
      size: 5,
      lastSeq: 1,
      replicas: [
        { segmentId: 's', nodeId: 'n', offset: 0, length: 5, status: 'processing' as const },
      ],
    };
    expect(objectChecksum({ ...r, lastSeq: 99 })).toBe(objectChecksum(r));
    expect(objectChecksum({ ...r, size: 6 })).not.toBe(objectChecksum(r));
    expect(
      objectChecksum({ ...r, replicas: [{ ...r.replicas[0]!, status: 'complete' }] }),
    ).not.toBe(objectChecksum(r));
    expect(objectChecksum({ ...r, replicas: [{ ...r.replicas[0]!, offset: 1 }] })).not.toBe(
      objectChecksum(r),
    );
  });
  it('shard and state digests change with the content', () => {
    const s = run(base, [{ type: 'putStart', key: 'k', size: 1, replicaNum: 1 }]);
    expect(shardDigest(s, shardOf('k'))).not.toBe(shardDigest(base, shardOf('k')));
    expect(stateDigest(s)).not.toBe(stateDigest(base));
    expect(stateDigest(emptyState())).toBe(stateDigest(emptyState()));
  });
});
