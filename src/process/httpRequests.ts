/**
 * The one way every HTTP server of understudy (the node's, `understudy inspect`'s) reads a
 * request and answers a bad one. Nothing a client sends can throw out of a handler: the request
 * target is parsed here (400 when it is no path, 414 when it is too long), a handler's error is
 * answered (its {@link HttpRequestError} status, else 500), and what the HTTP parser itself
 * refuses (bad chunking, invalid header bytes, headers over the limit) is answered 400/431/414
 * on the socket by {@link answerClientErrors} before the connection is closed; so is CONNECT.
 */
import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** The longest request target (path and query) answered; longer: 414. */
export const MAX_REQUEST_TARGET_BYTES = 8 * 1024;
/** The most bytes of request line and headers the parser reads; more: 431 (or 414, see above). */
export const MAX_HEADER_BYTES = 16 * 1024;

/** A request the server refuses, with the status to answer it with. */
export class HttpRequestError extends UnderstudyError {
  override readonly name = 'HttpRequestError';
  readonly code = 'HTTP_REQUEST';
  /** Headers the answer carries (e.g. `retry-after`). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    /** The HTTP status of the answer (4xx, or 5xx for the server's own failure). */
    readonly status: number,
    message: string,
    options?: ErrorOptions & { readonly headers?: Readonly<Record<string, string>> },
  ) {
    super(message, options);
    this.headers = options?.headers ?? {};
  }
}

/** A handler given the parsed request target; it may throw or reject, see {@link guardRequests}. */
export type GuardedHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
) => void | Promise<void>;

/** Answers `body` as JSON with status `code`. */
export function sendJson(
  res: ServerResponse,
  code: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(code, { ...headers, 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * The request target as a URL on `http://localhost`: origin-form (`/path?query`) or
 * absolute-form (`http://host/path`). Throws {@link HttpRequestError} 414 when it is longer
 * than {@link MAX_REQUEST_TARGET_BYTES}, 400 when it is neither form or does not parse. `//`
 * and `/%` are paths like any other (no route has them: 404).
 */
export function requestUrl(target: string | undefined): URL {
  const raw = target ?? '/';
  if (Buffer.byteLength(raw) > MAX_REQUEST_TARGET_BYTES) {
    throw new HttpRequestError(
      414,
      `the request target is longer than ${MAX_REQUEST_TARGET_BYTES} bytes`,
    );
  }
  try {
    if (raw.startsWith('/')) return new URL(`http://localhost${raw}`);
    if (/^https?:\/\//i.test(raw)) {
      const absolute = new URL(raw);
      return new URL(`http://localhost${absolute.pathname}${absolute.search}`);
    }
  } catch (cause) {
    throw new HttpRequestError(400, 'the request target does not parse', { cause });
  }
  throw new HttpRequestError(400, 'the request target must be a path');
}

/**
 * Refuses any method but `allowed` with 405 and an `allow` header; true when the method is
 * allowed (HEAD counts as GET).
 */
export function allowMethods(
  req: IncomingMessage,
  res: ServerResponse,
  allowed: readonly string[],
): boolean {
  const method = req.method === 'HEAD' && allowed.includes('GET') ? 'GET' : req.method;
  if (method !== undefined && allowed.includes(method)) return true;
  sendJson(res, 405, { error: `use ${allowed.join(' or ')}` }, { allow: allowed.join(', ') });
  return false;
}

/** Answers `err`: its status if it is an {@link HttpRequestError}, else 500; never throws. */
function answerError(res: ServerResponse, err: unknown): void {
  try {
    if (res.headersSent) {
      // Part of an answer is out: cut it short rather than let it pass for a whole one.
      res.destroy();
      return;
    }
    if (err instanceof HttpRequestError)
      sendJson(res, err.status, { error: err.message }, err.headers);
    else sendJson(res, 500, { error: err instanceof Error ? err.message : String(err) });
  } catch {
    res.destroy();
  }
}

/**
 * A `request` listener that parses the target with {@link requestUrl} and runs `handler`,
 * answering whatever it throws or rejects with (see {@link HttpRequestError}). A client that goes
 * away mid-request or mid-answer is no error of the server's.
 */
export function guardRequests(
  handler: GuardedHandler,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    try {
      const pending = handler(req, res, requestUrl(req.url));
      if (pending !== undefined) pending.catch((err: unknown) => answerError(res, err));
    } catch (err) {
      answerError(res, err);
    }
  };
}

/** What the parser refused, as a status: header overflow 431 (414 when the request line is it). */
function clientErrorStatus(err: Error & { code?: string; rawPacket?: unknown }): number {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  if (err.code !== 'HPE_HEADER_OVERFLOW') return 400;
  const packet = Buffer.isBuffer(err.rawPacket) ? err.rawPacket : undefined;
  if (packet === undefined) return 431;
  const eol = packet.indexOf('\n');
  return (eol < 0 ? packet.length : eol) > MAX_REQUEST_TARGET_BYTES ? 414 : 431;
}

/**
 * Answers what the HTTP parser refuses (bad chunking, invalid bytes in a header, a request line
 * or headers over {@link MAX_HEADER_BYTES}) with 400, 408, 414 or 431 and closes that
 * connection; a connection reset is closed quietly.
 */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    const answering = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code !== 'ECONNRESET' && socket.writable && answering?.headersSent !== true) {
      socket.write(rawAnswer(clientErrorStatus(err)));
    }
    socket.destroy();
  });
  // CONNECT (no proxy here): answered like any other method no route has.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    socket.end(rawAnswer(405, { allow: 'GET, POST' }));
  });
}

/** A whole HTTP/1.1 answer with a JSON error body that closes the connection. */
function rawAnswer(status: number, headers: Readonly<Record<string, string>> = {}): string {
  const body = JSON.stringify({ error: STATUS_CODES[status] ?? 'bad request' });
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${extra.join('')}` +
    `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: close\r\n\r\n${body}`
  );
}

/** An HTTP server with the limits above and {@link answerClientErrors}; add a guarded handler. */
export function createHttpServer(): Server {
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES });
  answerClientErrors(server);
  return server;
}
