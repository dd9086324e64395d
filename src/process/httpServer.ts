import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeRole } from '../../machines/masterNode.machine.ts';
import { digestHex } from '../domain/log/checksum.ts';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from '../observe/prometheusText.ts';
import { type NodeMetrics, type VerificationCounters } from '../observe/metrics.ts';
import type { NodeRuntime } from '../node/nodeRuntime.ts';
import { DigestBusyError, StatusDigest } from '../admin/statusDigest.ts';
import {
  allowMethods,
  createHttpServer,
  guardRequests,
  HttpRequestError,
  sendJson,
} from './httpRequests.ts';

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

/** The paths a starting node answers 503 (not yet), not 404. */
const STARTING_UNAVAILABLE = /^\/(readyz|metrics|(admin|inspect|test)\/.*)$/;

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
  const lag = Math.max(0, status.logLastSeq - status.appliedSeq);
  if (lag > maxLagForPromotion) {
    return { ready: false, role, reason: `lag ${lag} exceeds ${maxLagForPromotion} entries` };
  }
  if (!runtime.actor.getSnapshot().context.verificationHealthy) {
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

/**
 * A node's HTTP server: `/healthz` (200 while the process runs), `/readyz` (200 when
 * {@link readiness} says ready, else 503 with the reason), `/metrics` (Prometheus text) and
 * `/status` (JSON; `?digest` adds the state digest, `&shards` the shard digests, in hex), each
 * for GET and HEAD. Every request goes through `guardRequests` (httpRequests.ts): no request can
 * throw out of a handler, a bad one is answered 4xx.
 */
export class NodeHttpServer {
  #sampler: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** The answers while the node starts (see serveStarting). */
  #starting: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  private constructor(
    readonly server: Server,
    /** `http://host:port` as bound. */
    readonly url: string,
  ) {}

  /** Listens on `host:port` (a bare port means 127.0.0.1; port 0 picks a free one). */
  static async listen(address: string): Promise<NodeHttpServer> {
    const server = createHttpServer();
    return new NodeHttpServer(server, await listenOn(server, address));
  }

  /**
   * Answers while the node connects, before it has a runtime: `/healthz` 200, `/status` with
   * role `starting` and `waitingFor()` (the dependency it waits for), 503 for `/readyz`,
   * `/metrics` and the endpoints under `/admin/`, `/inspect/` and `/test/`, 404 for any other
   * path; {@link serve} takes over.
   */
  serveStarting(nodeId: string, waitingFor: () => string | undefined): void {
    this.#starting = guardRequests((req, res, { pathname }) => {
      const waited = waitingFor();
      const reason = waited === undefined ? 'the node is starting' : `waiting for ${waited}`;
      if (pathname === '/healthz' || pathname === '/status') {
        if (!allowMethods(req, res, ['GET'])) return;
      } else if (!STARTING_UNAVAILABLE.test(pathname)) {
        return sendJson(res, 404, { error: 'not found' });
      }
      if (pathname === '/healthz') return sendJson(res, 200, { ok: true });
      if (pathname === '/status') {
        return sendJson(res, 200, {
          nodeId,
          role: 'starting',
          ...(waited === undefined ? {} : { waitingFor: waited }),
        });
      }
      return sendJson(res, 503, { ready: false, role: 'starting', reason });
    });
    this.server.on('request', this.#starting);
  }

  /** Starts answering for `runtime`. */
  serve(runtime: NodeRuntime, options: NodeHttpOptions): void {
    if (this.#starting !== undefined) this.server.off('request', this.#starting);
    this.#starting = undefined;
    const { metrics } = options;
    const digests = new StatusDigest();
    const sample = (): void => metrics.sampleApplied(runtime.store.appliedSeq);
    sample();
    this.#sampler = setInterval(sample, options.sampleIntervalMs ?? 1000);
    this.#sampler.unref();
    this.server.on(
      'request',
      guardRequests((req, res, url) => {
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
      }),
    );
  }

  /** Stops sampling, stops listening and closes every connection. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= new Promise<void>((resolve) => {
      if (this.#sampler !== undefined) clearInterval(this.#sampler);
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    }));
  }
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
      const status = runtime.status();
      options.metrics.sampleApplied(status.appliedSeq);
      const body = renderPrometheus(
        options.metrics.families({
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
        }),
      );
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

/**
 * Makes `server` listen on `address` (`host:port`; a bare port means 127.0.0.1; port 0 picks a
 * free one); resolves with its `http://host:port` as bound.
 */
export async function listenOn(server: Server, address: string): Promise<string> {
  const [host, port] = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return `http://${shown}:${bound.port}`;
}

/** `host:port`, `:port` or a bare port; IPv6 hosts in brackets (`[::1]:0`). */
export function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  if (i < 0) return ['127.0.0.1', Number(address)];
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return [host || '127.0.0.1', Number(address.slice(i + 1))];
}
