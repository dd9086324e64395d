/**
 * The inspect page's server: the page itself (`ui/`, beside this module: its files, and its
 * TypeScript as ES modules, see {@link readUiFile}; no internet), the state charts
 * (`/api/chart?machine=masterNode`), the page stream (`/api/stream`, see {@link InspectHub})
 * and a WebSocket receiver for the standard inspection protocol (`@statelyai/inspect`'s
 * `createWebSocketInspector({ url: 'ws://host:port' })`, or a node's `--inspect`). Listens on
 * 127.0.0.1 unless told otherwise.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { createMachine, type AnyStateMachine } from 'xstate';
import { listenOn } from '../../process/httpServer.ts';
import {
  allowMethods,
  createHttpServer,
  guardRequests,
  sendJson,
} from '../../process/httpRequests.ts';
import { layoutChart, type ChartLayout } from './chartLayout.ts';
import type { InspectHub } from './inspectHub.ts';
import { readUiFile } from './uiFiles.ts';
import {
  INSPECTION_PROTOCOL_VERSION,
  type InspectionRecord,
  type InspectionRecordType,
} from '../../observe/inspectionRecord.ts';

/**
 * Where the page's files are: `ui/` beside this module (copied there by a build, too, with its
 * scripts compiled; from the sources they are compiled on request, see {@link readUiFile}).
 */
export const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

export interface InspectServerOptions {
  readonly hub: InspectHub;
  /** Machines whose charts are drawn from their definitions here, by id (`masterNode`). */
  readonly machines: Readonly<Record<string, AnyStateMachine>>;
  /** Accept inspection records over WebSocket (live mode); default true. */
  readonly acceptWebSocket?: boolean;
  /**
   * A WebSocket record from an actor of this node is dropped while the node's own stream is
   * open (a node run with `--inspect` pointing here would show twice).
   */
  readonly streamedNode?: (node: string) => boolean;
}

const RECORD_TYPES = new Set<InspectionRecordType>([
  '@xstate.actor',
  '@xstate.event',
  '@xstate.snapshot',
]);

/**
 * A protocol event from a WebSocket client as a record: our nodes' ids (`n1/x:0`) name their
 * node; anyone else's session ids are prefixed with the connection's name (`ws1/x:0`).
 */
export function recordFromClient(value: unknown, connection: string): InspectionRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const type = v['type'];
  if (typeof type !== 'string' || !RECORD_TYPES.has(type as InspectionRecordType)) return undefined;
  if (typeof v['sessionId'] !== 'string') return undefined;
  const sessionId = v['sessionId'];
  const slash = sessionId.indexOf('/');
  const node = slash > 0 ? sessionId.slice(0, slash) : connection;
  const named = (id: unknown): string | undefined =>
    typeof id !== 'string' || id === 'anonymous'
      ? undefined
      : slash > 0 || id.includes('/')
        ? id
        : `${connection}/${id}`;
  const createdAt = Number(v['createdAt']);
  return {
    ...(v as object),
    type: type as InspectionRecordType,
    sessionId: named(sessionId) ?? sessionId,
    rootId: named(v['rootId']),
    parentId: named(v['parentId']),
    sourceId: named(v['sourceId']),
    ...(typeof v['name'] === 'string'
      ? { name: slash > 0 || v['name'].includes('/') ? v['name'] : `${connection}/${v['name']}` }
      : {}),
    createdAt: String(Number.isFinite(createdAt) ? createdAt : Date.now()),
    _version: typeof v['_version'] === 'string' ? v['_version'] : INSPECTION_PROTOCOL_VERSION,
    id: null,
    node,
  };
}

export class InspectServer {
  readonly #charts = new Map<string, Promise<ChartLayout>>();
  readonly #sockets = new Set<WebSocket>();
  #connections = 0;

  private constructor(
    readonly server: Server,
    readonly url: string,
    private readonly options: InspectServerOptions,
    private readonly wss: WebSocketServer,
  ) {}

  /** Listens on `address` (`host:port`; a bare port means 127.0.0.1; port 0 picks one). */
  static async listen(address: string, options: InspectServerOptions): Promise<InspectServer> {
    const server = createHttpServer();
    const url = await listenOn(server, address);
    // noServer: the receiver shares this server's address, never listens on its own.
    const wss = new WebSocketServer({ noServer: true });
    const inspect = new InspectServer(server, url, options, wss);
    // One request path for every server (httpRequests.ts): a bad request is answered 4xx.
    server.on(
      'request',
      guardRequests((req, res, url) => inspect.#answer(req, res, url)),
    );
    server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => socket.destroy());
      if (options.acceptWebSocket === false) {
        socket.destroy();
        return;
      }
      try {
        wss.handleUpgrade(req, socket, head, (ws) => inspect.#receive(ws));
      } catch {
        socket.destroy();
      }
    });
    return inspect;
  }

  /** The chart of machine `id`: from the machines given, or from a definition a client sent. */
  chart(id: string): Promise<ChartLayout> | undefined {
    const known = this.#charts.get(id);
    if (known !== undefined) return known;
    const machine = this.options.machines[id] ?? this.#definedMachine(id);
    if (machine === undefined) return undefined;
    const layout = layoutChart(machine);
    this.#charts.set(id, layout);
    layout.catch(() => this.#charts.delete(id));
    return layout;
  }

  /** Stops listening and closes every page and socket. */
  async close(): Promise<void> {
    for (const ws of this.#sockets) ws.terminate();
    this.wss.close();
    this.options.hub.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** The newest definition of machine `id` among the actor records seen. */
  #definedMachine(id: string): AnyStateMachine | undefined {
    const records = this.options.hub.history;
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i];
      if (r?.type !== '@xstate.actor' || r.definition === undefined) continue;
      try {
        const config = JSON.parse(r.definition) as { id?: unknown; states?: unknown };
        if (config.id === id && config.states !== undefined) {
          return createMachine(config as Parameters<typeof createMachine>[0]);
        }
      } catch {
        // not a machine definition
      }
    }
    return undefined;
  }

  #receive(ws: WebSocket): void {
    const connection = `ws${++this.#connections}`;
    this.#sockets.add(ws);
    ws.on('message', (data: Buffer) => {
      let value: unknown;
      try {
        value = JSON.parse(data.toString('utf8'));
      } catch {
        return;
      }
      const record = recordFromClient(value, connection);
      if (record === undefined) return;
      if (this.options.streamedNode?.(record.node) === true) return;
      this.options.hub.add(record);
    });
    ws.on('close', () => this.#sockets.delete(ws));
    ws.on('error', () => ws.terminate());
  }

  async #answer(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (!allowMethods(req, res, ['GET'])) return;
    if (url.pathname === '/api/stream') {
      this.options.hub.attach(res);
      return;
    }
    if (url.pathname === '/api/chart') {
      const layout = this.chart(url.searchParams.get('machine') ?? '');
      if (layout === undefined) return sendJson(res, 404, { error: 'unknown machine' });
      return sendJson(res, 200, await layout);
    }
    const file = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
    const path = normalize(join(UI_DIR, file));
    const type = CONTENT_TYPES[extname(path)];
    if (!path.startsWith(UI_DIR) || type === undefined) {
      return sendJson(res, 404, { error: 'not found' });
    }
    const body = await readUiFile(path);
    if (body === undefined) return sendJson(res, 404, { error: 'not found' });
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
    res.end(body);
  }
}
