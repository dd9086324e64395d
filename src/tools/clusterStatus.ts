/**
 * The state of a cluster as operators see it: one row per node, from the member registry in
 * etcd and each member's own `/status` (`understudy status` and `understudy inspect` read it).
 */
import type { Etcd3 } from 'etcd3';
import type { LeaderView, MemberRecord } from '../ports/elector.ts';

/** The last verification round of a standby, from its `/status` `verification` field. */
export interface VerificationSummary {
  /** `OK`, `MISMATCH`, `NEED_FULL_SYNC`, `FAILED`, or null before the first round. */
  readonly lastStatus: string | null;
  /** Clock time (ms since the epoch) of the last answered round; 0 before the first. */
  readonly lastRoundAt: number;
  /** Clock time of the round that set `lastStatus` (a FAILED one too); 0 before the first. */
  readonly lastStatusAt: number;
  readonly rounds: number;
  readonly mismatches: number;
}

/** One node as `status` shows it. */
export interface StatusRow {
  readonly id: string;
  /** The node's state from its `/status` (or its member record's role, when unreachable). */
  readonly state: string;
  /** The primary's epoch as the node sees it (its own when primary). */
  readonly epoch: number;
  readonly appliedSeq: number;
  /** The primary's applied seq minus this node's (0 for the primary); null when unknown. */
  readonly lagEntries: number | null;
  /**
   * Estimated time behind (ms): `lagEntries` / the primary's apply rate (entries/s, its
   * `/metrics` `understudy_apply_rate`, a 10 s window). 0 when not behind; null when behind
   * but the rate is unknown or 0 (nothing is being written, so time lag is undefined).
   */
  readonly lagMs: number | null;
  /** From `/status` `verification`; null when the node does not report it. */
  readonly verification: VerificationSummary | null;
  readonly address: string;
  /** This node holds the leader key. */
  readonly leader: boolean;
  /** Its `/status` could not be read: the row comes from its member record. */
  readonly reachable: boolean;
  /** When the member record was last written (ms since the epoch); 0 when there is none. */
  readonly recordUpdatedAt: number;
  /** Why the node refuses to become eligible (it failed closed); null when it does not. */
  readonly failClosed: string | null;
}

/** What `status` read: the leader key and one row per node (sorted by id). */
export interface ClusterStatus {
  readonly cluster: string;
  readonly leader: LeaderView | null;
  readonly rows: readonly StatusRow[];
  /** The primary's apply rate (entries/s), null when unknown. */
  readonly applyRate: number | null;
  readonly readAt: number;
}

interface NodeStatusBody {
  readonly role?: unknown;
  readonly epoch?: unknown;
  readonly appliedSeq?: unknown;
  readonly verification?: unknown;
  readonly failClosed?: unknown;
}

const num = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

async function fetchJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body: unknown = await res.json();
  return body;
}

/** The value of `understudy_apply_rate` in a Prometheus text body; undefined when absent. */
export function parseApplyRate(metricsText: string): number | undefined {
  const match = /^understudy_apply_rate(?:\{[^}]*\})?\s+(\S+)/m.exec(metricsText);
  if (match?.[1] === undefined) return undefined;
  const value = Number(match[1]);
  return Number.isFinite(value) ? value : undefined;
}

async function fetchApplyRate(
  address: string,
  timeoutMs: number,
  query = '',
): Promise<number | undefined> {
  try {
    const res = await fetch(`${address}/metrics${query}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    return res.ok ? parseApplyRate(await res.text()) : undefined;
  } catch {
    return undefined;
  }
}

function verificationOf(value: unknown): VerificationSummary | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  return {
    lastStatus: typeof v['lastStatus'] === 'string' ? v['lastStatus'] : null,
    lastRoundAt: num(v['lastRoundAt']) ?? 0,
    lastStatusAt: num(v['lastStatusAt']) ?? num(v['lastRoundAt']) ?? 0,
    rounds: num(v['rounds']) ?? 0,
    mismatches: num(v['mismatches']) ?? 0,
  };
}

/**
 * Reads the cluster's status now: the leader key and member registry from etcd, then every
 * member's `/status` (and the primary's `/metrics` for its apply rate) over HTTP, each bounded
 * by `httpTimeoutMs`. A member that does not answer gets a row from its record. Rejects when
 * etcd cannot be read. With `group`, `cluster` is that group's name (`<cluster>-gN`) and each
 * node's member of it is asked (`/status?group=N`).
 */
export async function readClusterStatus(
  client: Etcd3,
  cluster: string,
  httpTimeoutMs = 1000,
  group?: number,
): Promise<ClusterStatus> {
  const query = group === undefined ? '' : `?group=${group}`;
  const { readMasterView } = await import('../adapters/etcd/etcdMembers.ts');
  const view = await readMasterView(client, cluster);
  const members: MemberRecord[] = [...view.members];
  const { leader } = view;
  if (leader !== null && !members.some((m) => m.nodeId === leader.nodeId)) {
    members.push({
      nodeId: leader.nodeId,
      role: 'primary',
      epoch: leader.epoch,
      appliedSeq: 0,
      address: leader.address,
      updatedAt: 0,
    });
  }
  const bodies = await Promise.all(
    members.map((m) =>
      m.address === ''
        ? Promise.resolve(undefined)
        : fetchJson(`${m.address}/status${query}`, httpTimeoutMs).then(
            (body) => body as NodeStatusBody,
            () => undefined,
          ),
    ),
  );
  const partial = members.map((m, i) => {
    const body = bodies[i];
    return {
      record: m,
      reachable: body !== undefined,
      state: typeof body?.role === 'string' ? body.role : m.role,
      epoch: num(body?.epoch) ?? m.epoch,
      appliedSeq: num(body?.appliedSeq) ?? m.appliedSeq,
      verification: verificationOf(body?.verification),
      failClosed: typeof body?.failClosed === 'string' ? body.failClosed : null,
    };
  });
  const primary =
    partial.find((p) => p.state === 'primary' && p.record.nodeId === leader?.nodeId) ??
    partial.find((p) => p.state === 'primary');
  const applyRate =
    primary === undefined || !primary.reachable
      ? undefined
      : await fetchApplyRate(primary.record.address, httpTimeoutMs, query);
  const head = primary?.appliedSeq;
  const rows: StatusRow[] = partial.map((p) => {
    const lagEntries = head === undefined ? null : Math.max(0, head - p.appliedSeq);
    const lagMs =
      lagEntries === null
        ? null
        : lagEntries === 0
          ? 0
          : applyRate !== undefined && applyRate > 0
            ? Math.round((lagEntries / applyRate) * 1000)
            : null;
    return {
      id: p.record.nodeId,
      state: p.state,
      epoch: p.epoch,
      appliedSeq: p.appliedSeq,
      lagEntries,
      lagMs,
      verification: p.verification,
      address: p.record.address,
      leader: leader?.nodeId === p.record.nodeId,
      reachable: p.reachable,
      recordUpdatedAt: p.record.updatedAt,
      failClosed: p.failClosed,
    };
  });
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { cluster, leader, rows, applyRate: applyRate ?? null, readAt: Date.now() };
}

function ago(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms ago`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s ago`;
  return `${Math.round(ms / 60_000)}m ago`;
}

/** The last-verification cell: `OK 12s ago`, `FAILED 2s ago`, `-` when unknown. */
export function verificationCell(v: VerificationSummary | null, now: number): string {
  if (v === null || v.lastStatus === null) return '-';
  return v.lastStatusAt > 0 ? `${v.lastStatus} ${ago(now - v.lastStatusAt)}` : v.lastStatus;
}

/** The node that answers as primary, if any (a row saying primary from its record does not count). */
export function servingPrimary(status: ClusterStatus): StatusRow | undefined {
  return status.rows.find((r) => r.state === 'primary' && r.reachable);
}

/** Why `status` exits {@link STATUS_EXIT.noPrimary}, or undefined when a primary answers. */
export function noPrimaryReason(status: ClusterStatus): string | undefined {
  if (servingPrimary(status) !== undefined) return undefined;
  const holder = status.rows.find((r) => r.leader);
  if (holder !== undefined && !holder.reachable) {
    return `no primary answers: ${holder.id} holds the leader key (epoch ${status.leader?.epoch ?? '?'}) but its /status at ${holder.address} does not answer; if it died, a standby takes over once its lease expires`;
  }
  return status.leader === null
    ? 'no primary: nobody holds the leader key (an election may be under way)'
    : `no primary: ${status.leader.nodeId} holds the leader key but no node answers as primary`;
}

/** The status as an aligned text table, with a one-line header naming the leader. */
export function renderStatusTable(status: ClusterStatus, now = Date.now()): string {
  const header = [
    'ID',
    'STATE',
    'EPOCH',
    'APPLIED',
    'LAG',
    'LAG_MS',
    'LAST_VERIFICATION',
    'ADDRESS',
  ];
  const lines = status.rows.map((r) => [
    r.leader ? `${r.id}*` : r.id,
    r.failClosed !== null
      ? `${r.state}(failed closed)`
      : r.reachable || r.state === 'missing'
        ? r.state
        : `${r.state}(unreachable)`,
    String(r.epoch),
    String(r.appliedSeq),
    r.lagEntries === null ? '-' : String(r.lagEntries),
    r.lagMs === null ? '-' : String(r.lagMs),
    verificationCell(r.verification, now),
    r.address,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const format = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const leader =
    status.leader === null
      ? 'no leader'
      : `leader ${status.leader.nodeId} epoch ${status.leader.epoch}`;
  const rate = status.applyRate === null ? '' : `, apply rate ${status.applyRate.toFixed(1)}/s`;
  const title = `cluster ${status.cluster}: ${leader}${rate} (* holds the leader key)`;
  const closed = status.rows
    .filter((r) => r.failClosed !== null)
    .map((r) => `${r.id} failed closed: ${r.failClosed ?? ''}`);
  return [title, format(header), ...lines.map(format), ...closed].join('\n') + '\n';
}

/** A row as `--json` prints it. */
export function statusRowJson(row: StatusRow): Record<string, unknown> {
  return {
    id: row.id,
    state: row.state,
    epoch: row.epoch,
    appliedSeq: row.appliedSeq,
    lagEntries: row.lagEntries,
    lagMs: row.lagMs,
    lastVerification: row.verification,
    address: row.address,
    leader: row.leader,
    reachable: row.reachable,
    failClosed: row.failClosed,
  };
}
