// Which nodes `understudy status` shows as `missing`: a node is expected (named by --expect, or
// seen earlier by the same `status --watch`) but has no member record now. A node killed with
// kill -9 keeps its record (shown unreachable) until its lease expires; after that, without this,
// it would simply drop out of the table.
import type { ClusterStatus, StatusRow } from '../tools/clusterStatus.ts';

/** The state shown for an expected node that has no member record. */
export const MISSING = 'missing';

/** `status` with a `missing` row for every node of `expected` that has no row; sorted by id. */
export function withMissing(status: ClusterStatus, expected: Iterable<string>): ClusterStatus {
  const present = new Set(status.rows.map((r) => r.id));
  const missing: StatusRow[] = [...new Set(expected)]
    .filter((id) => !present.has(id))
    .map((id) => ({
      id,
      state: MISSING,
      epoch: 0,
      appliedSeq: 0,
      lagEntries: null,
      lagMs: null,
      verification: null,
      address: '-',
      leader: false,
      reachable: false,
      recordUpdatedAt: 0,
      failClosed: null,
    }));
  if (missing.length === 0) return status;
  const rows = [...status.rows, ...missing].sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
  return { ...status, rows };
}

/** The line `status` prints under the table for the missing nodes; undefined when none. */
export function missingReason(status: ClusterStatus): string | undefined {
  const ids = status.rows.filter((r) => r.state === MISSING).map((r) => r.id);
  if (ids.length === 0) return undefined;
  return `missing: ${ids.join(', ')} (expected, but not in the member list: stopped, or its lease expired)`;
}
