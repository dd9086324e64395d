import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeRole } from '../../machines/masterNode.machine.ts';
import { digestHex } from '../domain/log/checksum.ts';
import {
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
  type MetricFamily,
} from '../observe/prometheusText.ts';
import { type NodeMetrics, type VerificationCounters } from '../observe/metrics.ts';
import type { NodeRuntime } from '../node/nodeRuntime.ts';
import { DigestBusyError, StatusDigest } from '../admin/statusDigest.ts';
import { allowMethods, HttpRequestError, sendJson } from './httpRequests.ts';

// What one node (one group's member) answers over HTTP: `/healthz`, `/readyz`, `/metrics`,
// `/status` and its extra routes. The process's server (httpServer.ts) serves one of these for a
// cluster of one group, or dispatches to one per group (groupRequests.ts).

/** Every role a node can report, in the order `/metrics` lists them. */
export const NODE_ROLES: readonly NodeRole[] = [
  'starting',
  'syncing',
  'standby',
  'candidate',
  'primary',
  'fenced',
  'stopping',
  'stopped',
];

/**
 * An extra endpoint (e.g. an admin action): answers the request itself. What it throws or
 * rejects with is answered for it (see `guardRequests` in httpRequests.ts).
 */
export type HttpRoute = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
) => void | Promise<void>;

export interface NodeHttpOptions {
  /** A standby further behind than this is not ready (not eligible for promotion). */
  readonly maxLagForPromotion: number;
  /** Where request latencies are recorded (the same object given to the runtime). */
  readonly metrics: NodeMetrics;
  /** More endpoints by path, tried before the built-in ones. */
  readonly routes?: Readonly<Record<string, HttpRoute>>;
  /** How often the applied seq is sampled for the apply rate (ms); default 1000. */
  readonly sampleIntervalMs?: number;
}

/** Whether a node is ready and, if not, why. */
export interface Readiness {
  readonly ready: boolean;
  readonly role: NodeRole;
  readonly reason?: string;
}

/**
 * Readiness: a primary is ready while its API listener is up; a standby while it is eligible
 * for promotion (it reads the log, its lag - passed-over messages included - is within
 * `maxLagForPromotion`, verification healthy). A node that refused or failed closed, and every
 * other role, is not ready.
 */
export function readiness(runtime: NodeRuntime, maxLagForPromotion: number): Readiness {
  const status = runtime.status();
  const role = status.role;
  if (status.refused !== undefined) return { ready: false, role, reason: status.refused };
  if (status.failClosed !== undefined)
    return { ready: false, role, reason: `failed closed: ${status.failClosed}` };
  if (role === 'primary') {
    return runtime.serving
      ? { ready: true, role }
      : { ready: false, role, reason: 'the API listener is not up' };
  }
  if (role !== 'standby') return { ready: false, role, reason: `the node is ${role}` };
  if (status.cutOff !== undefined) {
    return { ready: false, role, reason: `cut off from the log: ${status.cutOff}` };
  }
  const context = runtime.actor.getSnapshot().context;
  // Just started: lag 0 says nothing until the follower has read where the log ends.
  if (!context.logEndKnown) {
    return { ready: false, role, reason: "the log's end is not known yet" };
  }
  const lag = Math.max(0, status.logLastSeq - status.appliedSeq);
  if (lag > maxLagForPromotion) {
    return { ready: false, role, reason: `lag ${lag} exceeds ${maxLagForPromotion} entries` };
  }
  if (!context.verificationHealthy) {
    return { ready: false, role, reason: 'verification is not healthy' };
  }
  return { ready: true, role };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The verification counters of a runtime, wherever it keeps them (none: undefined). */
export function verificationCounters(runtime: NodeRuntime): VerificationCounters | undefined {
  const fromRuntime: unknown = (runtime as unknown as { verificationStats?: unknown })
    .verificationStats;
  const fromStatus: unknown = (runtime.status() as unknown as { verification?: unknown })
    .verification;
  const source = isRecord(fromRuntime) ? fromRuntime : isRecord(fromStatus) ? fromStatus : null;
  if (source === null) return undefined;
  const pick = (key: string): number | undefined => {
    const value = source[key];
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  };
  const counters: Record<string, number> = {};
  for (const key of [
    'rounds',
    'failedRounds',
    'keysChecked',
    'mismatches',
    'repairs',
    'fullSyncs',
  ]) {
    const value = pick(key);
    if (value !== undefined) counters[key] = value;
  }
  return counters;
}

/** Answers a process's requests (after it started); see {@link nodeRequests}. */
export interface RequestAnswerer {
  /** Answers one request; what it throws or rejects with is answered for it (guardRequests). */
  readonly handle: (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;
  /** Stops its timers. */
  close(): void;
}

/** One node's answers, and what a process hosting several group members asks of each. */
export interface NodeRequests extends RequestAnswerer {
  /** The node's metric families now (what `/metrics` renders). */
  families(): MetricFamily[];
}

/**
 * One node's answers: `/healthz`, `/readyz` ({@link readiness}), `/metrics` (Prometheus text),
 * `/status` (JSON; `?digest` adds the state digest, `&shards` the shard digests, in hex), each
 * for GET and HEAD, and the extra `options.routes` before them. Samples the applied seq every
 * `sampleIntervalMs` until closed.
 */
export function nodeRequests(runtime: NodeRuntime, options: NodeHttpOptions): NodeRequests {
  const { metrics } = options;
  const digests = new StatusDigest();
  const sample = (): void => metrics.sampleApplied(runtime.store.appliedSeq);
  sample();
  const sampler = setInterval(sample, options.sampleIntervalMs ?? 1000);
  sampler.unref();
  return {
    handle: (req, res, url) => {
      const route = options.routes?.[url.pathname];
      if (route !== undefined) return route(req, res, url);
      if (!allowMethods(req, res, ['GET'])) return;
      return answer(runtime, options, digests, url, res)?.catch((err: unknown) => {
        if (!(err instanceof DigestBusyError)) throw err;
        throw new HttpRequestError(429, err.message, {
          cause: err,
          headers: { 'retry-after': '1' },
        });
      });
    },
    families: () => nodeFamilies(runtime, metrics),
    close: () => clearInterval(sampler),
  };
}

/** The metric families of `runtime` now (samples the applied seq first). */
function nodeFamilies(runtime: NodeRuntime, metrics: NodeMetrics): MetricFamily[] {
  const status = runtime.status();
  metrics.sampleApplied(status.appliedSeq);
  return metrics.families({
    nodeId: status.nodeId,
    role: status.role,
    roles: NODE_ROLES,
    epoch: status.epoch,
    appliedSeq: status.appliedSeq,
    logLastSeq: status.logLastSeq,
    promotions: status.promotions,
    fences: status.fences,
    skippedMessages: status.skipped,
    foreignEntries: status.foreign,
    verificationHealthy: runtime.actor.getSnapshot().context.verificationHealthy,
    verification: verificationCounters(runtime),
    checkpoints: runtime.checkpointStats,
    now: Date.now(),
  });
}

function answer(
  runtime: NodeRuntime,
  options: NodeHttpOptions,
  digests: StatusDigest,
  url: URL,
  res: ServerResponse,
): Promise<void> | void {
  switch (url.pathname) {
    case '/healthz':
      return sendJson(res, 200, { ok: true });
    case '/readyz': {
      const r = readiness(runtime, options.maxLagForPromotion);
      return sendJson(res, r.ready ? 200 : 503, r);
    }
    case '/metrics': {
      const body = renderPrometheus(nodeFamilies(runtime, options.metrics));
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
      res.end(body);
      return;
    }
    case '/status': {
      const status = runtime.status();
      if (url.searchParams.has('digest')) {
        // The digest is computed in slices off the event loop's critical path (statusDigest.ts).
        const state = runtime.store.state;
        return digests.of(state).then((computed) =>
          sendJson(res, 200, {
            ...status,
            digestSeq: state.appliedSeq,
            digest: digestHex(computed.digest),
            objectCount: state.objectCount,
            shards: url.searchParams.has('shards') ? computed.shards.map(digestHex) : undefined,
          }),
        );
      }
      return sendJson(res, 200, status);
    }
    default:
      return sendJson(res, 404, { error: 'not found' });
  }
}
