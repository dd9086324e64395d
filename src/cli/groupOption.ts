// `--group N`: which group of a cluster of several groups an operator command is about. A group
// runs as a cluster of its own name (`<cluster>-g<N>`, see `groupCluster`).
import type { Etcd3 } from 'etcd3';
import { groupCluster } from '../api/subjects.ts';
import { ConfigError } from '../config/settings.ts';
import { MAX_GROUPS } from '../domain/model/groups.ts';

/** The `--group` flag's help. */
export const GROUP_OPTION_HELP =
  'the group to act on, 0..G-1, in a cluster of more than one group (--groups)';

/** The `--group` flag's value, or undefined when not given. Throws {@link ConfigError}. */
export function groupFlag(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || Number(value) >= MAX_GROUPS) {
    throw new ConfigError([
      `--group: ${JSON.stringify(value)} is not a group number (0..${MAX_GROUPS - 1})`,
    ]);
  }
  return Number(value);
}

/** The cluster's group count as recorded in etcd (a cluster without the record has one). */
export async function clusterGroupCount(client: Etcd3, cluster: string): Promise<number> {
  const { readGroupCount } = await import('../adapters/etcd/clusterGroupsRecord.ts');
  return (await readGroupCount(client, cluster)) ?? 1;
}

/**
 * The name group `group` of `cluster` (of `groups` groups) runs under. Throws
 * {@link ConfigError} when the cluster has several groups and none is named, or the one named
 * is not one of them.
 */
export function groupTarget(cluster: string, group: number | undefined, groups: number): string {
  if (group === undefined) {
    if (groups === 1) return cluster;
    throw new ConfigError([
      `cluster ${cluster} has ${groups} groups: name one with --group N (0..${groups - 1})`,
    ]);
  }
  if (group >= groups) {
    throw new ConfigError([
      `--group: cluster ${cluster} has ${groups} group${groups === 1 ? '' : 's'} (0..${groups - 1}), not ${group}`,
    ]);
  }
  return groupCluster(cluster, group, groups);
}

/**
 * The name group `group` runs under, read without etcd (the group count is not needed for a
 * group of a cluster of several); the cluster's own name when no group is named.
 */
export function namedGroupCluster(cluster: string, group: number | undefined): string {
  return group === undefined ? cluster : groupCluster(cluster, group, MAX_GROUPS);
}
