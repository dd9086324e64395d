/**
 * `--inspect URL`: the node's actors go to an XState inspector over WebSocket.
 *
 * `@statelyai/inspect`'s own WebSocket adapter retries a failed connection every 5 s with a
 * timer that keeps the process alive and that `stop()` does not cancel. This adapter sends
 * the same inspection events with the `ws` client, but its sockets and timers are unref'd and
 * `stop()` ends everything: an inspector that is missing or slow never blocks the node and
 * never keeps the process alive.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { WebSocket } from 'ws';
import type { InspectionEvent, Observer } from 'xstate';
import type { RuntimeLogger } from '../node/nodeRuntime.ts';

const WS_OPEN = 1;

/** Opens the TCP (or TLS) connection unref'd: an inspector connection never keeps the process alive. */
function unrefConnection(options: Record<string, unknown>): Socket {
  const socket =
    options['protocol'] === 'wss:'
      ? tlsConnect({
          ...options,
          servername:
            typeof options['servername'] === 'string'
              ? options['servername']
              : String(options['host']),
        })
      : netConnect(options as { host: string; port: number });
  socket.unref();
  return socket;
}

/** JSON without cycles: a repeated object becomes `"[Circular]"`. Never throws for cycles. */
function stringify(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'function') return undefined;
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return v;
  });
}

export interface NodeInspectorOptions {
  /** Wait before reconnecting after a failed or closed connection (ms); default 5000. */
  readonly reconnectDelayMs?: number;
  /** Events kept while not connected (the oldest are dropped); default 200. */
  readonly maxDeferredEvents?: number;
  /** How long a WebSocket handshake may take (ms); default 5000. */
  readonly handshakeTimeoutMs?: number;
}

/** A connection to an XState inspector. */
export interface NodeInspector {
  /** Pass to `createActor(machine, { inspect })`. */
  readonly inspect: Observer<InspectionEvent>;
  /** Sends an inspection record that is already in the protocol's form (a node's feed). */
  send(record: object): void;
  /** Whether the WebSocket is open now. */
  readonly connected: boolean;
  /** Closes the connection and stops reconnecting; events after this are dropped. Idempotent. */
  stop(): void;
}

class UnrefWebSocketAdapter {
  #ws: WebSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #warned = false;
  readonly #deferred: StatelyInspectionEvent[] = [];

  constructor(
    private readonly url: string,
    private readonly logger: RuntimeLogger,
    private readonly options: Required<NodeInspectorOptions>,
  ) {}

  get connected(): boolean {
    return this.#ws?.readyState === WS_OPEN;
  }

  start(): void {
    if (this.#stopped || this.#ws !== undefined) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url, {
        handshakeTimeout: this.options.handshakeTimeoutMs,
        // ws calls it with one options object only.
        createConnection: unrefConnection as unknown as typeof netConnect,
      });
    } catch (err) {
      this.#failed(err);
      return;
    }
    this.#ws = ws;
    ws.on('open', () => {
      this.#warned = false;
      this.logger.info({ event: 'inspectorConnected', url: this.url }, 'inspector connected');
      for (const event of this.#deferred.splice(0)) this.#write(ws, event);
    });
    ws.on('error', (err) => this.#failed(err));
    ws.on('close', () => {
      if (this.#ws === ws) this.#retry();
    });
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#deferred.length = 0;
    const ws = this.#ws;
    this.#ws = undefined;
    try {
      ws?.terminate();
    } catch {
      // already closed
    }
  }

  send(event: StatelyInspectionEvent): void {
    if (this.#stopped) return;
    const ws = this.#ws;
    if (ws !== undefined && ws.readyState === WS_OPEN) {
      this.#write(ws, event);
      return;
    }
    this.#deferred.push(event);
    if (this.#deferred.length > this.options.maxDeferredEvents) this.#deferred.shift();
  }

  #write(ws: WebSocket, event: StatelyInspectionEvent): void {
    try {
      ws.send(stringify(event));
    } catch {
      // an event that cannot be serialised or sent is dropped; the node does not care
    }
  }

  #failed(err: unknown): void {
    if (!this.#warned && !this.#stopped) {
      this.#warned = true;
      this.logger.warn(
        { event: 'inspectorUnavailable', url: this.url, err: String(err) },
        'cannot reach the inspector; retrying in the background',
      );
    }
    this.#retry();
  }

  #retry(): void {
    const ws = this.#ws;
    this.#ws = undefined;
    try {
      ws?.terminate();
    } catch {
      // already closed
    }
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.start();
    }, this.options.reconnectDelayMs);
    this.#timer.unref();
  }
}

/**
 * Connects to the XState inspector at `url` (`ws://` or `wss://`) in the background. Never
 * throws for an unreachable inspector and never delays the caller: events wait (up to a
 * bound) until the connection opens. Nothing it holds keeps the process alive.
 */
export function createNodeInspector(
  url: string,
  logger: RuntimeLogger,
  options: NodeInspectorOptions = {},
): NodeInspector {
  const adapter = new UnrefWebSocketAdapter(url, logger, {
    reconnectDelayMs: options.reconnectDelayMs ?? 5000,
    maxDeferredEvents: options.maxDeferredEvents ?? 200,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
  });
  const inspector = createInspector(adapter, { autoStart: false });
  adapter.start();
  return {
    inspect: inspector.inspect,
    send: (record) => adapter.send(record as StatelyInspectionEvent),
    get connected() {
      return adapter.connected;
    },
    stop: () => adapter.stop(),
  };
}
