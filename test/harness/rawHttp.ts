// Raw HTTP/1.1 over node:net, for requests fetch refuses to send (`//`, `/%`, 70 KB paths, bad
// chunking, invalid header bytes): writes the bytes, half-closes, and reads the answer's status.
import { connect } from 'node:net';

/** What a server answered to raw bytes: its status (undefined: it closed without one). */
export interface RawAnswer {
  readonly status: number | undefined;
  /** Everything received (cut at 64 KiB). */
  readonly text: string;
}

/**
 * Sends `bytes` to `127.0.0.1:port` and resolves with the answer once the server closes the
 * connection, or once the status line and `settleMs` more have passed (a stream such as
 * /inspect/events never closes). With no answer after `endAfterMs` the writing side is ended,
 * so a request left incomplete is judged by the server (ended at once, node's server would drop
 * a request still being answered asynchronously). Never rejects: a reset is an answer without
 * a status.
 */
export function rawRequest(
  port: number,
  bytes: string | Uint8Array,
  { timeoutMs = 10_000, settleMs = 200, endAfterMs = 1_000 } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let settled = false;
    let settleTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(settleTimer);
      clearTimeout(endTimer);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: match === null ? undefined : Number(match[1]), text });
    };
    const timer = setTimeout(finish, timeoutMs);
    const endTimer = setTimeout(() => {
      if (text === '') socket.end();
    }, endAfterMs);
    socket.on('connect', () => socket.write(bytes));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      if (text.length < 64 * 1024) text += chunk;
      if (settleTimer === undefined && text.includes('\r\n'))
        settleTimer = setTimeout(finish, settleMs);
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
}

/** A request with `method`, `target`, `headers` (raw lines, CRLF added) and `body`. */
export function rawMessage(
  method: string,
  target: string,
  headers: readonly string[] = [],
  body = '',
): string {
  return [`${method} ${target} HTTP/1.1`, 'host: 127.0.0.1', ...headers, '', body].join('\r\n');
}
