/**
 * The client API's transport, as a port: request/reply of opaque bytes per operation name.
 * The server side is what the primary listens on; the client side is what the client library
 * sends through. Adapters: NATS request/reply (`adapters/nats/natsApiTransport.ts`) and an
 * in-memory bus for the simulation (`adapters/memory/memoryApiTransport.ts`).
 */
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** Answers one request: the operation name and the raw request body, to the raw reply. */
export type ApiRequestHandler = (op: string, body: Uint8Array) => Promise<Uint8Array>;

/** A live listener. */
export interface ApiListener {
  /**
   * Stops taking new requests, lets the requests already taken finish and reply, then
   * resolves. Idempotent.
   */
  close(): Promise<void>;
}

/** How a primary listens. */
export interface ApiListenOptions {
  /**
   * The primary's epoch: the transport also serves requests addressed to this term's primary
   * alone, and tells clients the term, so they stop sending to a former primary that is paused
   * but still subscribed.
   */
  readonly epoch?: number;
}

/** The server side: only the primary listens, so requests reach only the primary. */
export interface ApiServerTransport {
  /**
   * Starts delivering requests to `handler`. Resolves once requests sent from now on reach
   * it, after announcing that to clients (see {@link ApiClientTransport.onListening}); rejects
   * if the listener cannot be set up. Every reply `handler` returns is sent back to the
   * requester.
   */
  listen(handler: ApiRequestHandler, options?: ApiListenOptions): Promise<ApiListener>;
}

/** The client side. */
export interface ApiClientTransport {
  /**
   * Sends `body` to whoever serves `op` and resolves with the reply. Rejects with
   * {@link TransportTimeoutError} when no reply came within `timeoutMs`, with
   * {@link NoRespondersError} when nobody listens (no primary right now), with
   * {@link TransportUnavailableError} when the transport is disconnected (all three retryable),
   * with {@link RequestTooLargeError} when `body` exceeds what the transport carries, and with
   * {@link TransportClosedError} after `close()`.
   */
  request(op: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /**
   * Calls `listener` each time a server announces that it has started listening (a new
   * primary serves). Best effort: an announcement can be missed, so it only shortens a wait
   * that backoff would end anyway. Returns the unsubscribe function. Optional: a transport
   * without announcements leaves it out.
   */
  onListening?(listener: () => void): () => void;
  /**
   * The server addressed last answered `NOT_PRIMARY`: address the current primary anew.
   * Optional: a transport that always reaches whoever serves leaves it out.
   */
  notPrimary?(): void;
  /** Releases the transport (and the connection, when the transport owns it). Idempotent. */
  close(): Promise<void>;
}

/** No reply within the timeout. Retryable: the server may be failing over. */
export class TransportTimeoutError extends UnderstudyError {
  override readonly name = 'TransportTimeoutError';
  readonly code = 'TIMEOUT';
  override readonly retryable = true;
  constructor(
    readonly op: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(`no reply to ${op} within ${timeoutMs} ms`, options);
  }
}

/** Nobody listens for the request: no primary serves right now. Retryable. */
export class NoRespondersError extends UnderstudyError {
  override readonly name = 'NoRespondersError';
  readonly code = 'NO_RESPONDERS';
  override readonly retryable = true;
  constructor(
    readonly op: string,
    options?: ErrorOptions,
  ) {
    super(`no responders for ${op}: no primary is serving`, options);
  }
}

/** The transport is disconnected or reconnecting. Retryable. */
export class TransportUnavailableError extends UnderstudyError {
  override readonly name = 'TransportUnavailableError';
  readonly code = 'UNAVAILABLE';
  override readonly retryable = true;
  constructor(
    readonly op: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${op}: transport unavailable: ${message}`, options);
  }
}

/** The request is larger than the transport carries. Not retryable: it would fail again. */
export class RequestTooLargeError extends UnderstudyError {
  override readonly name = 'RequestTooLargeError';
  readonly code = 'REQUEST_TOO_LARGE';
  override readonly retryable = false;
  constructor(
    readonly op: string,
    readonly bytes: number,
    readonly limit: number,
    options?: ErrorOptions,
  ) {
    super(`${op} request of ${bytes} bytes exceeds the limit of ${limit} bytes`, options);
  }
}

/** The transport was closed by its owner. Not retryable. */
export class TransportClosedError extends UnderstudyError {
  override readonly name = 'TransportClosedError';
  readonly code = 'CLOSED';
  override readonly retryable = false;
  constructor(
    readonly op: string,
    options?: ErrorOptions,
  ) {
    super(`${op}: the transport is closed`, options);
  }
}
