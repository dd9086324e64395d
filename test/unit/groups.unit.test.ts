import { describe, expect, it } from 'vitest';
import {
  assertGroupCount,
  groupOfKey,
  groupOfShard,
  MAX_GROUPS,
  shardsOfGroup,
} from '../../src/domain/model/groups.ts';
import { SHARD_COUNT, shardOf } from '../../src/domain/model/shard.ts';

describe('groups', () => {
  it('one group owns every shard: a cluster of one group is today’s cluster', () => {
    for (let s = 0; s < SHARD_COUNT; s++) expect(groupOfShard(s, 1)).toBe(0);
    expect(shardsOfGroup(0, 1)).toEqual({ first: 0, end: SHARD_COUNT });
  });

  it('the ranges of shardsOfGroup cover every shard once and agree with groupOfShard', () => {
    for (const groups of [1, 2, 3, 4, 7, 8, 100, MAX_GROUPS]) {
      let next = 0;
      for (let g = 0; g < groups; g++) {
        const { first, end } = shardsOfGroup(g, groups);
        expect(first).toBe(next);
        expect(end).toBeGreaterThan(first);
        for (let s = first; s < end; s++) expect(groupOfShard(s, groups)).toBe(g);
        next = end;
      }
      expect(next).toBe(SHARD_COUNT);
    }
  });

  it('a key belongs to the group of its shard', () => {
    for (const key of ['a', 'b', 'object/1', 'ключ']) {
      expect(groupOfKey(key, 4)).toBe(groupOfShard(shardOf(key), 4));
    }
  });

  it('refuses a group count outside 1..1024', () => {
    for (const bad of [0, -1, 1.5, MAX_GROUPS + 1, Number.NaN]) {
      expect(() => assertGroupCount(bad)).toThrow(RangeError);
    }
    expect(() => assertGroupCount(8)).not.toThrow();
  });
});
