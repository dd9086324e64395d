/**
 * The client API over NATS core request/reply. The server side subscribes to
 * `understudy.<cluster>.api.*` in a queue group and replies to each request with the handler's
 * bytes, and publishes on `understudy.<cluster>.listening.api` once it listens; the client side
 * sends `nc.request` to `understudy.<cluster>.api.<op>`, maps the client's errors to the port's
 * typed errors, and hears the announcements.
 */
import {
  ClosedConnectionError,
  InvalidArgumentError,
  NoRespondersError as NatsNoRespondersError,
  TimeoutError,
  type Msg,
  type NatsConnection,
} from '@nats-io/nats-core';
import { encodeError } from '../../api/wire.ts';
import {
  API_QUEUE_GROUP,
  apiSubject,
  apiWildcard,
  listeningSubject,
  opOfSubject,
  type Channel,
} from '../../api/subjects.ts';
import {
  NoRespondersError,
  RequestTooLargeError,
  TransportClosedError,
  TransportTimeoutError,
  TransportUnavailableError,
  type ApiClientTransport,
  type ApiListener,
  type ApiServerTransport,
} from '../../ports/apiTransport.ts';

export interface NatsApiServerOptions {
  readonly nc: NatsConnection;
  readonly cluster: string;
  /** The subjects' channel (default `api`). */
  readonly channel?: Channel;
  /** Queue group (default {@link API_QUEUE_GROUP}). */
  readonly queue?: string;
  /** Called when a reply cannot be sent (connection closed, reply too large). */
  readonly onReplyError?: (op: string, error: unknown) => void;
}

/** The primary's side: listens on the cluster's API subjects. */
export function createNatsApiServerTransport(options: NatsApiServerOptions): ApiServerTransport {
  const { nc, cluster } = options;
  const channel = options.channel ?? 'api';
  return {
    async listen(handler) {
      const inFlight = new Set<Promise<void>>();
      const respond = (msg: Msg, reply: Uint8Array, op: string): void => {
        try {
          msg.respond(reply);
        } catch (err) {
          options.onReplyError?.(op, err);
          // Only the client API has a wire format for errors; an admin requester times out.
          if (channel !== 'api') return;
          try {
            // Most likely the reply is over max_payload: say so rather than time out.
            msg.respond(
              encodeError({
                code: 'INTERNAL',
                message: `the reply to ${op} could not be sent: ${(err as Error).message}`,
                retryable: false,
              }),
            );
          } catch {
            // the connection is gone: the requester times out and retries
          }
        }
      };
      const sub = nc.subscribe(apiWildcard(cluster, channel), {
        queue: options.queue ?? API_QUEUE_GROUP,
        callback: (err, msg) => {
          if (err !== null || msg.reply === undefined || msg.reply === '') return;
          const op = opOfSubject(cluster, msg.subject, channel) ?? '';
          const p = handler(op, msg.data).then(
            (reply) => respond(msg, reply, op),
            (e: unknown) => options.onReplyError?.(op, e),
          );
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        },
      });
      // Resolve only once the server has the subscription; then tell waiting clients (best
      // effort: a client that misses it retries on its own backoff).
      await nc.flush();
      try {
        nc.publish(listeningSubject(cluster, channel));
      } catch {
        // the connection is closing: nobody would be served anyway
      }
      let closing: Promise<void> | undefined;
      const listener: ApiListener = {
        close() {
          closing ??= (async () => {
            if (!nc.isClosed()) {
              try {
                await sub.drain();
              } catch {
                sub.unsubscribe();
              }
            }
            await Promise.allSettled([...inFlight]);
          })();
          return closing;
        },
      };
      return listener;
    },
  };
}

export interface NatsApiClientOptions {
  readonly nc: NatsConnection;
  readonly cluster: string;
  /** The subjects' channel (default `api`). */
  readonly channel?: Channel;
  /** Close `nc` when the transport is closed (default false). */
  readonly ownsConnection?: boolean;
}

function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let e = err;
  while (e !== undefined && e !== null && chain.length < 8) {
    chain.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return chain;
}

/** The client's side: one request per call, on the cluster's API subjects. */
export function createNatsApiClientTransport(options: NatsApiClientOptions): ApiClientTransport {
  const { nc, cluster } = options;
  let closed = false;
  return {
    async request(op, body, timeoutMs) {
      if (closed) throw new TransportClosedError(op);
      const maxPayload = nc.info?.max_payload;
      if (maxPayload !== undefined && body.byteLength > maxPayload) {
        throw new RequestTooLargeError(op, body.byteLength, maxPayload);
      }
      try {
        const msg = await nc.request(apiSubject(cluster, op, options.channel), body, {
          timeout: Math.max(1, Math.ceil(timeoutMs)),
        });
        return msg.data;
      } catch (err) {
        const chain = causes(err);
        if (chain.some((e) => e instanceof NatsNoRespondersError)) {
          throw new NoRespondersError(op, { cause: err });
        }
        if (chain.some((e) => e instanceof TimeoutError)) {
          throw new TransportTimeoutError(op, timeoutMs, { cause: err });
        }
        if (chain.some((e) => e instanceof InvalidArgumentError && /max_payload/.test(e.message))) {
          throw new RequestTooLargeError(op, body.byteLength, maxPayload ?? 0, { cause: err });
        }
        if (closed || chain.some((e) => e instanceof ClosedConnectionError)) {
          throw new TransportClosedError(op, { cause: err });
        }
        throw new TransportUnavailableError(op, (err as Error).message, { cause: err });
      }
    },
    onListening(listener) {
      const sub = nc.subscribe(listeningSubject(cluster, options.channel), {
        callback: (err) => {
          if (err === null && !closed) listener();
        },
      });
      return () => sub.unsubscribe();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (options.ownsConnection === true && !nc.isClosed()) await nc.close();
    },
  };
}
