/**
 * The state of a cluster of several groups as operators see it: a group x node table, each cell
 * the node's member of that group (state, epoch, applied seq), from each group's leader key and
 * member registry in etcd and each node's `/status?group=N` (`understudy status`).
 */
import type { Etcd3 } from 'etcd3';
import { groupCluster } from '../api/subjects.ts';
import {
  noPrimaryReason,
  readClusterStatus,
  statusRowJson,
  type ClusterStatus,
} from './clusterStatus.ts';

/** One group's status. */
export interface GroupStatus {
  readonly group: number;
  readonly status: ClusterStatus;
}

/** Reads every group's status now (see {@link readClusterStatus}); rejects when etcd cannot be read. */
export function readGroupsStatus(
  client: Etcd3,
  cluster: string,
  groups: number,
  httpTimeoutMs = 1000,
): Promise<GroupStatus[]> {
  return Promise.all(
    Array.from({ length: groups }, async (_, group) => ({
      group,
      status: await readClusterStatus(
        client,
        groupCluster(cluster, group, groups),
        httpTimeoutMs,
        group,
      ),
    })),
  );
}

/** Why some group has no primary answering (`group 2: no primary ...`); undefined when all do. */
export function groupsNoPrimaryReason(groups: readonly GroupStatus[]): string | undefined {
  const reasons = groups.flatMap(({ group, status }) => {
    const reason = noPrimaryReason(status);
    return reason === undefined ? [] : [`group ${group}: ${reason}`];
  });
  return reasons.length === 0 ? undefined : reasons.join('; ');
}

/**
 * The groups as an aligned text table: one line per group, one column per node, each cell
 * `state epoch@applied` (`*` on the primary holding the leader key, `-` where the node has no
 * member record of that group), then how many groups each node leads.
 */
export function renderGroupTable(cluster: string, groups: readonly GroupStatus[]): string {
  const ids = [...new Set(groups.flatMap((g) => g.status.rows.map((r) => r.id)))].sort();
  const header = ['GROUP', 'NAME', ...ids];
  const lines = groups.map(({ group, status }) => [
    String(group),
    status.cluster,
    ...ids.map((id) => {
      const row = status.rows.find((r) => r.id === id);
      if (row === undefined) return '-';
      const state = row.reachable || row.state === 'missing' ? row.state : `${row.state}?`;
      return `${state}${row.leader ? '*' : ''} e${row.epoch}@${row.appliedSeq}`;
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const leads = ids.map(
    (id) =>
      `${id} ${groups.filter((g) => g.status.rows.some((r) => r.id === id && r.state === 'primary')).length}`,
  );
  return (
    [
      `cluster ${cluster}: ${groups.length} groups (* holds the leader key, ? unreachable)`,
      format(header),
      ...lines.map(format),
      `primaries per node: ${leads.join(', ')}`,
    ].join('\n') + '\n'
  );
}

/** The groups as `--json` prints them. */
export function groupsJson(groups: readonly GroupStatus[]): Record<string, unknown>[] {
  return groups.map(({ group, status }) => ({
    group,
    cluster: status.cluster,
    leader: status.leader?.nodeId ?? null,
    epoch: status.leader?.epoch ?? null,
    rows: status.rows.map(statusRowJson),
  }));
}
