import { SHARD_COUNT, shardOf } from './shard.ts';

/**
 * Groups split the keyspace so a cluster can run several primaries: each group owns a
 * contiguous range of the {@link SHARD_COUNT} shards and is, on its own, exactly a cluster of one
 * group (its own OpLog stream, leader key, epoch, checkpoints, sessions, verification). A
 * cluster's group count is fixed when the cluster is created.
 */

/** Most groups a cluster may have: every group owns at least one shard. */
export const MAX_GROUPS = SHARD_COUNT;

/** Throws unless `groups` is a whole number from 1 to {@link MAX_GROUPS}. */
export function assertGroupCount(groups: number): void {
  if (!Number.isSafeInteger(groups) || groups < 1 || groups > MAX_GROUPS) {
    throw new RangeError(`groups must be a whole number from 1 to ${MAX_GROUPS}, not ${groups}`);
  }
}

/** The group (0..groups-1) owning `shard`: group g owns shards [g*1024/G, (g+1)*1024/G). */
export function groupOfShard(shard: number, groups: number): number {
  return Math.floor((shard * groups) / SHARD_COUNT);
}

/** The group owning `key`'s shard. */
export function groupOfKey(key: string, groups: number): number {
  return groupOfShard(shardOf(key), groups);
}

/** The shards `group` owns, as a half-open range `[first, end)`. */
export function shardsOfGroup(group: number, groups: number): { first: number; end: number } {
  return {
    first: Math.ceil((group * SHARD_COUNT) / groups),
    end: Math.ceil(((group + 1) * SHARD_COUNT) / groups),
  };
}
