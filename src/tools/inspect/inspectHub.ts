/**
 * What `understudy inspect` knows and tells its pages: the inspection records from every
 * source (nodes' streams, WebSocket inspector clients, recordings), a bounded history of
 * them, and one view per node (reachable or gone, and its status row). Pages get it as one
 * Server-Sent Events stream: a `hello`, the history, then every change.
 */
import type { ServerResponse } from 'node:http';
import type { InspectionRecord } from '../../observe/inspectionRecord.ts';
import { machineOf, tellStory, type StoryRecord } from './storyWords.ts';

/**
 * Replay: a master node's recording (one run of it) ends while its machine still runs (the
 * process was killed, or the file ends): from here on the node is gone, until a later run.
 */
export interface RecordingEnded {
  readonly type: '@understudy.recordingEnded';
  readonly sessionId: string;
  readonly node: string;
  readonly createdAt: string;
  readonly words: string;
}

/** What the page gets: a record with its story, or the end of a recording. */
export type PageRecord = StoryRecord | RecordingEnded;

/** One node as the page shows it beside its machine. */
export interface NodeView {
  readonly id: string;
  /** Its inspection stream is open now. */
  readonly connected: boolean;
  /** When `connected` last changed (ms since the epoch). */
  readonly since: number;
  readonly address: string;
  /** From the node's `/status` (via `understudy status`'s reader); null when not read. */
  readonly state: string | null;
  readonly epoch: number | null;
  readonly appliedSeq: number | null;
  readonly lagEntries: number | null;
  readonly lagMs: number | null;
  /** `OK 12s ago`, `-`: as `understudy status` shows it. */
  readonly lastVerification: string | null;
  /** It holds the leader key. */
  readonly leader: boolean;
}

/** A message of the page stream. */
export type PageMessage =
  | {
      readonly kind: 'hello';
      readonly mode: 'live' | 'replay';
      readonly title: string;
      /** Replay: the files replayed. */
      readonly sources?: readonly string[];
    }
  | { readonly kind: 'record'; readonly record: PageRecord }
  | {
      readonly kind: 'nodes';
      readonly nodes: readonly NodeView[];
      /** What is wrong with the cluster connection (etcd unreachable); absent when nothing. */
      readonly problem?: string;
      /** The leader key's lease TTL (ms) as etcd granted it; absent until read. */
      readonly leaseTtlMs?: number;
    };

export interface InspectHubOptions {
  readonly mode: 'live' | 'replay';
  readonly title: string;
  /** Records kept for a page that opens later (live mode; default 5000). */
  readonly historyLimit?: number;
  readonly sources?: readonly string[];
}

export class InspectHub {
  readonly #history: PageRecord[] = [];
  /** Session ids of master node root actors (their snapshots get a role and an epoch). */
  readonly #masterSessions = new Set<string>();
  #leaseTtlMs: number | undefined;
  #endsMarked = false;
  readonly #pages = new Set<ServerResponse>();
  readonly #nodes = new Map<string, NodeView>();
  #problem: string | undefined;
  readonly #heartbeat: NodeJS.Timeout;

  constructor(readonly options: InspectHubOptions) {
    this.#heartbeat = setInterval(() => {
      for (const page of this.#pages) page.write(': ping\n\n');
    }, 15_000);
    this.#heartbeat.unref();
  }

  /** Every record so far (live: the newest `historyLimit`), in arrival order. */
  get history(): readonly PageRecord[] {
    return this.#history;
  }

  get nodes(): readonly NodeView[] {
    return [...this.#nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A record from any source: kept and sent to every page. */
  add(raw: InspectionRecord): void {
    if (raw.type === '@xstate.actor' && raw.parentId === undefined) {
      if (machineOf(raw) === 'masterNode') this.#masterSessions.add(raw.sessionId);
      else this.#masterSessions.delete(raw.sessionId);
    }
    const record = tellStory(raw, this.#masterSessions.has(raw.sessionId));
    this.#history.push(record);
    const limit = this.options.historyLimit ?? 5000;
    if (this.options.mode === 'live' && this.#history.length > limit) {
      this.#history.splice(0, this.#history.length - limit);
    }
    this.#broadcast({ kind: 'record', record });
  }

  /** Updates (or adds) a node's view; pages hear of it when something they show changed. */
  updateNode(id: string, change: Partial<Omit<NodeView, 'id'>>): void {
    const before = this.#nodes.get(id);
    const base: NodeView = before ?? {
      id,
      connected: false,
      since: Date.now(),
      address: '',
      state: null,
      epoch: null,
      appliedSeq: null,
      lagEntries: null,
      lagMs: null,
      lastVerification: null,
      leader: false,
    };
    const next: NodeView = { ...base, ...change };
    if (change.connected !== undefined && change.connected !== base.connected) {
      Object.assign(next, { since: Date.now() });
    }
    this.#nodes.set(id, next);
    if (before === undefined || JSON.stringify(before) !== JSON.stringify(next)) this.#sendNodes();
  }

  /** What is wrong with the cluster connection (etcd unreachable), or undefined when nothing. */
  setProblem(problem: string | undefined): void {
    if (problem === this.#problem) return;
    this.#problem = problem;
    this.#sendNodes();
  }

  /** The leader key's lease TTL (ms), as etcd granted it. */
  setLeaseTtl(ms: number | undefined): void {
    if (ms === this.#leaseTtlMs) return;
    this.#leaseTtlMs = ms;
    this.#sendNodes();
  }

  /** Streams to `res` (an SSE response): hello, the history, the nodes, then every change. */
  attach(res: ServerResponse): void {
    if (this.options.mode === 'replay') this.#markEnds();
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const hello: PageMessage = {
      kind: 'hello',
      mode: this.options.mode,
      title: this.options.title,
      ...(this.options.sources === undefined ? {} : { sources: this.options.sources }),
    };
    write(res, hello);
    for (const record of this.#history) write(res, { kind: 'record', record });
    write(res, this.#nodesMessage());
    this.#pages.add(res);
    res.once('close', () => this.#pages.delete(res));
  }

  /** Ends every page stream. */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const page of this.#pages) page.end();
    this.#pages.clear();
  }

  #nodesMessage(): PageMessage {
    return {
      kind: 'nodes',
      nodes: this.nodes,
      ...(this.#problem === undefined ? {} : { problem: this.#problem }),
      ...(this.#leaseTtlMs === undefined ? {} : { leaseTtlMs: this.#leaseTtlMs }),
    };
  }

  /**
   * Replay, once all records are in: after the last record of each master node run that ends
   * with its machine still running (killed, or the recording stops), a {@link RecordingEnded}.
   * A run ends where the same session starts again (a restart) or the records end.
   */
  #markEnds(): void {
    if (this.#endsMarked) return;
    this.#endsMarked = true;
    const ends: { index: number; record: RecordingEnded }[] = [];
    const last = new Map<string, number>();
    const close = (sessionId: string): void => {
      const at = last.get(sessionId);
      last.delete(sessionId);
      if (at === undefined) return;
      const r = this.#history[at];
      if (r === undefined || r.type === '@understudy.recordingEnded') return;
      if (r.snapshot?.status === 'done' || r.snapshot?.status === 'stopped') return;
      ends.push({
        index: at,
        record: {
          type: '@understudy.recordingEnded',
          sessionId,
          node: r.node,
          createdAt: r.createdAt,
          words: 'recording ends (process gone)',
        },
      });
    };
    this.#history.forEach((r, i) => {
      if (!this.#masterSessions.has(r.sessionId)) return;
      if (r.type === '@xstate.actor' && r.parentId === undefined) close(r.sessionId);
      last.set(r.sessionId, i);
    });
    for (const sessionId of [...last.keys()]) close(sessionId);
    ends.sort((a, b) => b.index - a.index);
    for (const { index, record } of ends) this.#history.splice(index + 1, 0, record);
  }

  #sendNodes(): void {
    this.#broadcast(this.#nodesMessage());
  }

  #broadcast(message: PageMessage): void {
    for (const page of this.#pages) write(page, message);
  }
}

function write(res: ServerResponse, message: PageMessage): void {
  res.write(`data: ${JSON.stringify(message)}\n\n`);
}
