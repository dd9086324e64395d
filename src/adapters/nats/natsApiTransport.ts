/**
 * The client API over NATS core request/reply. The server side subscribes to
 * `understudy.<cluster>.api.*` in a queue group and, given its epoch, to its term's subjects
 * `understudy.<cluster>.api.e<epoch>.*` and to `api.term.current` (answered with the epoch); it
 * replies to each request with the handler's bytes, and publishes its epoch on
 * `understudy.<cluster>.listening.api` once it listens. The client side sends `nc.request` to
 * the term subject of the newest term it has heard of (from an announcement, or by asking
 * `api.term.current`: the first answer is from a primary that runs), forgets the term on
 * `NOT_PRIMARY`, no responders or a timeout and asks again, and uses the queue-group subject
 * `understudy.<cluster>.api.<op>` while it knows no term. It maps the client's errors to the
 * port's typed errors and hears the announcements.
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
  currentTermSubject,
  listeningSubject,
  opOfSubject,
  termSubject,
  termWildcard,
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

/** An announcement of term `epoch`'s primary: `{"epoch":N}`. */
function termAnnouncement(epoch: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ epoch }));
}

/** The epoch an announcement names, if it names one. */
function announcedEpoch(data: Uint8Array): number | undefined {
  if (data.byteLength === 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(data));
    const epoch =
      typeof parsed === 'object' && parsed !== null && 'epoch' in parsed ? parsed.epoch : undefined;
    return typeof epoch === 'number' && Number.isSafeInteger(epoch) && epoch >= 0
      ? epoch
      : undefined;
  } catch {
    return undefined;
  }
}

/** The primary's side: listens on the cluster's API subjects. */
export function createNatsApiServerTransport(options: NatsApiServerOptions): ApiServerTransport {
  const { nc, cluster } = options;
  const channel = options.channel ?? 'api';
  return {
    async listen(handler, listenOptions) {
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
      const take = (msg: Msg, op: string): void => {
        if (msg.reply === undefined || msg.reply === '') return;
        const p = handler(op, msg.data).then(
          (reply) => respond(msg, reply, op),
          (e: unknown) => options.onReplyError?.(op, e),
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      };
      const subs = [
        nc.subscribe(apiWildcard(cluster, channel), {
          queue: options.queue ?? API_QUEUE_GROUP,
          callback: (err, msg) => {
            if (err === null) take(msg, opOfSubject(cluster, msg.subject, channel) ?? '');
          },
        }),
      ];
      const epoch = channel === 'api' ? listenOptions?.epoch : undefined;
      if (epoch !== undefined) {
        subs.push(
          nc.subscribe(termWildcard(cluster, epoch), {
            callback: (err, msg) => {
              if (err === null) take(msg, msg.subject.slice(msg.subject.lastIndexOf('.') + 1));
            },
          }),
          nc.subscribe(currentTermSubject(cluster), {
            callback: (err, msg) => {
              if (err !== null || msg.reply === undefined || msg.reply === '') return;
              try {
                msg.respond(termAnnouncement(epoch));
              } catch {
                // the connection is gone
              }
            },
          }),
        );
      }
      // Resolve only once the server has the subscription; then tell waiting clients (best
      // effort: a client that misses it retries on its own backoff).
      await nc.flush();
      try {
        nc.publish(
          listeningSubject(cluster, channel),
          epoch === undefined ? new Uint8Array() : termAnnouncement(epoch),
        );
      } catch {
        // the connection is closing: nobody would be served anyway
      }
      let closing: Promise<void> | undefined;
      const listener: ApiListener = {
        close() {
          closing ??= (async () => {
            if (!nc.isClosed()) {
              await Promise.all(
                subs.map((sub) =>
                  sub.drain().catch(() => {
                    sub.unsubscribe();
                  }),
                ),
              );
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

/** How long a client waits for an answer to `api.term.current` (ms). */
const ASK_TERM_TIMEOUT_MS = 1000;

/**
 * Which primary a client addresses: the newest term it has heard of, from announcements or
 * by asking `api.term.current`; none (the queue group) while it knows none.
 */
class TermAddress {
  #epoch: number | undefined;
  #asking = false;
  readonly #unsubscribe: () => void;

  constructor(
    private readonly nc: NatsConnection,
    private readonly cluster: string,
  ) {
    const sub = nc.subscribe(listeningSubject(cluster), {
      callback: (err, msg) => {
        if (err === null) this.#heard(announcedEpoch(msg.data));
      },
    });
    this.#unsubscribe = () => sub.unsubscribe();
    this.ask();
  }

  /** The epoch addressed now, if any. */
  get epoch(): number | undefined {
    return this.#epoch;
  }

  /** The subject for `op`: the term's own, or the queue group's (and asks for the term). */
  subject(op: string): string {
    if (this.#epoch === undefined) {
      this.ask();
      return apiSubject(this.cluster, op);
    }
    return termSubject(this.cluster, this.#epoch, op);
  }

  /** Term `epoch` did not answer, or its node is not primary: stop addressing it, ask anew. */
  forget(epoch: number | undefined): void {
    if (epoch !== undefined && epoch === this.#epoch) this.#epoch = undefined;
    this.ask();
  }

  /** Asks the serving primaries for their term (one question at a time); the first answer wins. */
  ask(): void {
    if (this.#asking || this.nc.isClosed()) return;
    this.#asking = true;
    this.nc
      .request(currentTermSubject(this.cluster), new Uint8Array(), {
        timeout: ASK_TERM_TIMEOUT_MS,
      })
      .then(
        (msg) => this.#heard(announcedEpoch(msg.data)),
        () => undefined,
      )
      .finally(() => {
        this.#asking = false;
      });
  }

  close(): void {
    this.#unsubscribe();
  }

  #heard(epoch: number | undefined): void {
    if (epoch === undefined) return;
    if (this.#epoch === undefined || epoch > this.#epoch) this.#epoch = epoch;
  }
}

/** The client's side: one request per call, on the cluster's API subjects. */
export function createNatsApiClientTransport(options: NatsApiClientOptions): ApiClientTransport {
  const { nc, cluster } = options;
  let closed = false;
  // Only the client API addresses terms; the admin channel always uses the queue group.
  const term =
    (options.channel ?? 'api') === 'api' && !nc.isClosed()
      ? new TermAddress(nc, cluster)
      : undefined;
  return {
    async request(op, body, timeoutMs) {
      if (closed) throw new TransportClosedError(op);
      const maxPayload = nc.info?.max_payload;
      if (maxPayload !== undefined && body.byteLength > maxPayload) {
        throw new RequestTooLargeError(op, body.byteLength, maxPayload);
      }
      const epoch = term?.epoch;
      const subject = term?.subject(op) ?? apiSubject(cluster, op, options.channel);
      try {
        const msg = await nc.request(subject, body, {
          timeout: Math.max(1, Math.ceil(timeoutMs)),
        });
        return msg.data;
      } catch (err) {
        const chain = causes(err);
        if (chain.some((e) => e instanceof NatsNoRespondersError)) {
          term?.forget(epoch);
          throw new NoRespondersError(op, { cause: err });
        }
        if (chain.some((e) => e instanceof TimeoutError)) {
          term?.forget(epoch);
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
    notPrimary() {
      term?.forget(term.epoch);
    },
    async close() {
      if (closed) return;
      closed = true;
      term?.close();
      if (options.ownsConnection === true && !nc.isClosed()) await nc.close();
    },
  };
}
