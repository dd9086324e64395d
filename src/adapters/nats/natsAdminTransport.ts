/**
 * The admin channel between nodes over NATS core request/reply, on
 * `understudy.<cluster>.admin.<op>`. Only the serving primary subscribes (in a queue group, as
 * the client API does), so a standby's verification round or full-sync request reaches the
 * primary or gets "no responders". Same ports as the client API: {@link ApiServerTransport}
 * and {@link ApiClientTransport}.
 */
import {
  ClosedConnectionError,
  NoRespondersError as NatsNoRespondersError,
  TimeoutError,
  type NatsConnection,
} from '@nats-io/nats-core';
import { assertClusterName } from '../../api/subjects.ts';
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

/** The queue group every serving primary subscribes to the admin subjects in. */
export const ADMIN_QUEUE_GROUP = 'understudy-admin';

/** The subject an admin request for `op` in `cluster` is sent to. */
export function adminSubject(cluster: string, op: string): string {
  assertClusterName(cluster);
  if (!/^[A-Za-z0-9_-]+$/.test(op)) throw new RangeError(`op ${JSON.stringify(op)} is not a token`);
  return `understudy.${cluster}.admin.${op}`;
}

export interface NatsAdminOptions {
  readonly nc: NatsConnection;
  readonly cluster: string;
  /** Called when a reply cannot be sent. */
  readonly onReplyError?: (op: string, error: unknown) => void;
}

/**
 * The largest reply the connection carries (bytes), less a margin for headers: what the
 * primary may put in one admin reply.
 */
export function maxAdminReplyBytes(nc: NatsConnection): number {
  return Math.max(1024, (nc.info?.max_payload ?? 1024 * 1024) - 4096);
}

/** The primary's side: listens on the cluster's admin subjects. */
export function createNatsAdminServerTransport(options: NatsAdminOptions): ApiServerTransport {
  const { nc, cluster } = options;
  const prefix = `understudy.${cluster}.admin.`;
  return {
    async listen(handler) {
      assertClusterName(cluster);
      const inFlight = new Set<Promise<void>>();
      const sub = nc.subscribe(`${prefix}*`, {
        queue: ADMIN_QUEUE_GROUP,
        callback: (err, msg) => {
          if (err !== null || msg.reply === undefined || msg.reply === '') return;
          const op = msg.subject.slice(prefix.length);
          const p = handler(op, msg.data).then(
            (reply) => {
              try {
                msg.respond(reply);
              } catch (e) {
                options.onReplyError?.(op, e);
              }
            },
            (e: unknown) => options.onReplyError?.(op, e),
          );
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        },
      });
      await nc.flush();
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

function causes(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let e = err;
  while (e !== undefined && e !== null && chain.length < 8) {
    chain.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return chain;
}

/** A standby's side: one request per call on the cluster's admin subjects. */
export function createNatsAdminClientTransport(options: NatsAdminOptions): ApiClientTransport {
  const { nc, cluster } = options;
  let closed = false;
  return {
    async request(op, body, timeoutMs) {
      if (closed) throw new TransportClosedError(op);
      const maxPayload = nc.info?.max_payload;
      if (maxPayload !== undefined && body.byteLength > maxPayload)
        throw new RequestTooLargeError(op, body.byteLength, maxPayload);
      try {
        const msg = await nc.request(adminSubject(cluster, op), body, {
          timeout: Math.max(1, Math.ceil(timeoutMs)),
        });
        return msg.data;
      } catch (err) {
        const chain = causes(err);
        if (chain.some((e) => e instanceof NatsNoRespondersError))
          throw new NoRespondersError(op, { cause: err });
        if (chain.some((e) => e instanceof TimeoutError))
          throw new TransportTimeoutError(op, timeoutMs, { cause: err });
        if (closed || chain.some((e) => e instanceof ClosedConnectionError))
          throw new TransportClosedError(op, { cause: err });
        throw new TransportUnavailableError(op, (err as Error).message, { cause: err });
      }
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}
