import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NodeRuntime } from '../node/nodeRuntime.ts';
import { allowMethods, createHttpServer, guardRequests, sendJson } from './httpRequests.ts';
import { nodeRequests, type NodeHttpOptions, type RequestAnswerer } from './nodeRequests.ts';

/** The paths a starting node answers 503 (not yet), not 404. */
const STARTING_UNAVAILABLE = /^\/(readyz|metrics|(admin|inspect|test)\/.*)$/;

export {
  NODE_ROLES,
  readiness,
  verificationCounters,
  type HttpRoute,
  type NodeHttpOptions,
  type Readiness,
} from './nodeRequests.ts';

/**
 * A node's HTTP server: `/healthz` (200 while the process runs), `/readyz` (200 when
 * {@link readiness} says ready, else 503 with the reason), `/metrics` (Prometheus text) and
 * `/status` (JSON; `?digest` adds the state digest, `&shards` the shard digests, in hex), each
 * for GET and HEAD. Every request goes through `guardRequests` (httpRequests.ts): no request can
 * throw out of a handler, a bad one is answered 4xx.
 */
export class NodeHttpServer {
  #requests: RequestAnswerer | undefined;
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

  /** Starts answering for `runtime` (a node of one group, as every node was before groups). */
  serve(runtime: NodeRuntime, options: NodeHttpOptions): void {
    this.serveRequests(nodeRequests(runtime, options));
  }

  /**
   * Starts answering with `requests` (one node's, or a process's hosting a member of every
   * group), in place of the starting answers.
   */
  serveRequests(requests: RequestAnswerer): void {
    if (this.#starting !== undefined) this.server.off('request', this.#starting);
    this.#starting = undefined;
    this.#requests = requests;
    this.server.on('request', guardRequests(requests.handle));
  }

  /** Stops sampling, stops listening and closes every connection. Idempotent. */
  close(): Promise<void> {
    return (this.#closing ??= new Promise<void>((resolve) => {
      this.#requests?.close();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    }));
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
