// What a process hosting a member of every group answers over HTTP (a cluster of more than one
// group; a cluster of one group is answered by nodeRequests.ts alone, exactly as before groups).
// `?group=N` on any path is answered by group N's member as a node of one group answers it;
// without it, `/status`, `/readyz` and `/metrics` speak for the whole process.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeRole } from '../../machines/masterNode.machine.ts';
import { mergeFamilies } from '../observe/mergeFamilies.ts';
import {
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
  type MetricFamily,
} from '../observe/prometheusText.ts';
import { allowMethods, HttpRequestError, sendJson } from './httpRequests.ts';
import type { RequestAnswerer } from './nodeRequests.ts';

/** One group's member as `/status` lists it. */
export interface GroupSummary {
  readonly group: number;
  /** The name the group runs under (`<cluster>-g<group>`): its stream, leader key, subjects. */
  readonly cluster: string;
  readonly role: NodeRole;
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly logLastSeq: number;
  readonly ready: boolean;
  /** Why it is not ready; absent when it is. */
  readonly reason?: string;
}

/**
 * What the process's HTTP server asks of the member of one group it hosts. Every answer is a
 * promise or goes through the request itself, so a member can run in this thread or, later, in
 * a worker thread of its own that answers by message.
 */
export interface HostedGroup {
  readonly group: number;
  readonly cluster: string;
  /** The member's role, epoch, applied seq and readiness now. */
  summary(): Promise<GroupSummary>;
  /** The member's metric families now (unlabelled: the caller adds `group`). */
  families(): Promise<MetricFamily[]>;
  /** Answers a request for this group as a node of one group answers it. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void | Promise<void>;
  /** Stops what it answers with (timers). */
  close(): void;
}

/** Paths only a group's member can answer: without `?group=N` they are refused with 400. */
const GROUP_ONLY = /^\/(admin|inspect|test)\//;

/**
 * The answers of a process hosting `members` (one per group, in group order) for node `nodeId`
 * of `cluster`: `/healthz` 200; `/status` the node and one {@link GroupSummary} per group;
 * `/readyz` 200 when every member is ready, else 503 naming the first that is not; `/metrics`
 * every member's series with a `group` label; `?group=N` the member of group N.
 */
export function groupRequests(
  nodeId: string,
  cluster: string,
  members: readonly HostedGroup[],
): RequestAnswerer {
  const memberOf = (raw: string): HostedGroup => {
    const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
    const member = members[n];
    if (member === undefined) {
      throw new HttpRequestError(
        400,
        `group must be one of 0..${members.length - 1}, not ${JSON.stringify(raw)}`,
      );
    }
    return member;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const group = url.searchParams.get('group');
    if (group !== null) return memberOf(group).handle(req, res, url);
    if (GROUP_ONLY.test(url.pathname)) {
      throw new HttpRequestError(
        400,
        `this node hosts ${members.length} groups: add ?group=N (0..${members.length - 1})`,
      );
    }
    if (!allowMethods(req, res, ['GET'])) return;
    switch (url.pathname) {
      case '/healthz':
        return sendJson(res, 200, { ok: true });
      case '/status': {
        const groups = await Promise.all(members.map((m) => m.summary()));
        return sendJson(res, 200, { nodeId, cluster, groupCount: members.length, groups });
      }
      case '/readyz': {
        const groups = await Promise.all(members.map((m) => m.summary()));
        const notReady = groups.find((g) => !g.ready);
        return notReady === undefined
          ? sendJson(res, 200, { ready: true })
          : sendJson(res, 503, {
              ready: false,
              reason: `group ${notReady.group}: ${notReady.reason ?? 'not ready'}`,
            });
      }
      case '/metrics': {
        const families = await Promise.all(
          members.map(async (m) => ({
            labels: { group: String(m.group) },
            families: await m.families(),
          })),
        );
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
        res.end(renderPrometheus(mergeFamilies(families)));
        return;
      }
      default:
        return sendJson(res, 404, { error: 'not found' });
    }
  };
  return { handle, close: () => members.forEach((m) => m.close()) };
}
