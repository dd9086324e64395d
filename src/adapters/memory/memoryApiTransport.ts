/**
 * The client API transport in memory, for the simulation and unit tests. By default one bus
 * holds, per cluster, at most one listener (the primary); with `queueGroup` it holds any number,
 * as NATS does for a queue group (a paused old primary and the new one both subscribed), and
 * each request goes to one of them. A request to a cluster with no listener fails
 * with `NoRespondersError`. Hooks decide, per request, to deliver, drop or delay the reply, so
 * lost and late replies can be played deterministically. Timeouts and delays run on the
 * injected clock.
 */
import { MAX_REQUEST_BYTES } from '../../api/wire.ts';
import {
  NoRespondersError,
  RequestTooLargeError,
  TransportClosedError,
  TransportTimeoutError,
  type ApiClientTransport,
  type ApiListener,
  type ApiRequestHandler,
  type ApiServerTransport,
} from '../../ports/apiTransport.ts';
import type { Clock } from '../../ports/clock.ts';
import { systemClock } from '../systemClock.ts';

/**
 * What happens to one request: its reply is delivered, dropped (the request was served, the
 * reply lost) or delayed; or the request itself is lost (`dropRequest`: never served).
 */
export type ReplyFate =
  | { readonly kind: 'deliver' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'dropRequest' }
  | { readonly kind: 'delay'; readonly ms: number };

/** One request as the hook sees it. `n` counts requests on the bus from 1. */
export interface BusRequest {
  readonly cluster: string;
  readonly op: string;
  readonly body: Uint8Array;
  readonly n: number;
}

export interface MemoryApiBusOptions {
  /** The clock timeouts and delays run on (default: the real clock). */
  readonly clock?: Clock;
  /** Largest request the bus carries (default {@link MAX_REQUEST_BYTES} + 4 KiB, like NATS). */
  readonly maxPayload?: number;
  /** Decides each reply's fate (default: deliver). */
  readonly replyFate?: (request: BusRequest) => ReplyFate;
  /**
   * Queue-group semantics: several listeners per cluster may be open at once, and each request
   * reaches one of them (see `pickListener`). Default false: `listen` rejects while another
   * listener of the cluster is open.
   */
  readonly queueGroup?: boolean;
  /**
   * With `queueGroup`: which of the `count` open listeners (oldest first) takes the request;
   * default the request number modulo `count`. Must return an integer in [0, count).
   */
  readonly pickListener?: (request: BusRequest, count: number) => number;
}

/** An in-memory request/reply bus for the client API. */
export class MemoryApiBus {
  readonly #listeners = new Map<string, ApiRequestHandler[]>();
  /** Clients hearing announcements, per cluster. */
  readonly #hearing = new Map<string, Set<() => void>>();
  readonly #queueGroup: boolean;
  readonly #pickListener: (request: BusRequest, count: number) => number;
  readonly #clock: Clock;
  readonly #maxPayload: number;
  #replyFate: ((request: BusRequest) => ReplyFate) | undefined;
  #count = 0;

  constructor(options: MemoryApiBusOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#maxPayload = options.maxPayload ?? MAX_REQUEST_BYTES + 4096;
    this.#replyFate = options.replyFate;
    this.#queueGroup = options.queueGroup ?? false;
    this.#pickListener = options.pickListener ?? ((request, count) => request.n % count);
  }

  /** Replaces the reply hook (undefined: deliver every reply). */
  setReplyFate(hook: ((request: BusRequest) => ReplyFate) | undefined): void {
    this.#replyFate = hook;
  }

  /** How many requests the bus has carried (including those with no responders). */
  get requestCount(): number {
    return this.#count;
  }

  /** Whether `cluster` has a listener now. */
  hasListener(cluster: string): boolean {
    return this.listenerCount(cluster) > 0;
  }

  /** How many listeners `cluster` has now. */
  listenerCount(cluster: string): number {
    return this.#listeners.get(cluster)?.length ?? 0;
  }

  /**
   * The server side for `cluster`. Without `queueGroup`, `listen` rejects while another
   * listener of the same cluster is open: one primary at a time.
   */
  serverTransport(cluster: string): ApiServerTransport {
    return {
      listen: (handler) => {
        if (!this.#queueGroup && this.hasListener(cluster)) {
          return Promise.reject(new Error(`cluster ${cluster} already has an API listener`));
        }
        const inFlight = new Set<Promise<unknown>>();
        let closed = false;
        const tracked: ApiRequestHandler = (op, body) => {
          const p = handler(op, body);
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p)).catch(() => undefined);
          return p;
        };
        this.#listeners.set(cluster, [...(this.#listeners.get(cluster) ?? []), tracked]);
        // The announcement reaches clients after listen() resolves, as a message would.
        queueMicrotask(() => {
          for (const hear of [...(this.#hearing.get(cluster) ?? [])]) hear();
        });
        const listener: ApiListener = {
          close: async () => {
            if (!closed) {
              closed = true;
              const rest = (this.#listeners.get(cluster) ?? []).filter((h) => h !== tracked);
              if (rest.length > 0) this.#listeners.set(cluster, rest);
              else this.#listeners.delete(cluster);
            }
            await Promise.allSettled([...inFlight]);
          },
        };
        return Promise.resolve(listener);
      },
    };
  }

  /** The client side for `cluster`. */
  clientTransport(cluster: string): ApiClientTransport {
    let closed = false;
    return {
      request: (op, body, timeoutMs) => {
        if (closed) return Promise.reject(new TransportClosedError(op));
        const n = ++this.#count;
        if (body.byteLength > this.#maxPayload) {
          return Promise.reject(new RequestTooLargeError(op, body.byteLength, this.#maxPayload));
        }
        const handlers = this.#listeners.get(cluster) ?? [];
        const copy = body.slice();
        const request: BusRequest = { cluster, op, body: copy, n };
        const handler =
          handlers.length > 1
            ? handlers[this.#pickListener(request, handlers.length)]
            : handlers[0];
        if (handler === undefined) return Promise.reject(new NoRespondersError(op));
        const fate = this.#replyFate?.(request) ?? { kind: 'deliver' };
        return new Promise<Uint8Array>((resolve, reject) => {
          let settled = false;
          const timer = this.#clock.setTimeout(() => {
            if (settled) return;
            settled = true;
            reject(new TransportTimeoutError(op, timeoutMs));
          }, timeoutMs);
          const deliver = (reply: Uint8Array): void => {
            if (settled) return;
            settled = true;
            timer.clear();
            resolve(reply);
          };
          if (fate.kind === 'dropRequest') return;
          handler(op, copy).then(
            (reply) => {
              if (fate.kind === 'deliver') deliver(reply);
              else if (fate.kind === 'delay') this.#clock.setTimeout(() => deliver(reply), fate.ms);
            },
            // A handler that rejects is a bug in it; the requester sees a timeout.
            () => undefined,
          );
        });
      },
      onListening: (listener) => {
        const hear = (): void => {
          if (!closed) listener();
        };
        const hearing = this.#hearing.get(cluster) ?? new Set<() => void>();
        hearing.add(hear);
        this.#hearing.set(cluster, hearing);
        return () => hearing.delete(hear);
      },
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    };
  }
}
