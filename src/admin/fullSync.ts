/**
 * Full sync over the admin channel. The primary freezes its committed state at seq S (the
 * immutable state object itself: no copy) and serves it chunk by chunk, 10,000 records each,
 * while it keeps folding new writes into newer states. The standby fetches every chunk in
 * order, rebuilds the state, checks the whole-state digest (the last chunk carries it), and
 * then follows the log from S+1.
 *
 * Chunks travel in the binary chunk encoding checkpoints use (binaryChunk.ts: varints, a names
 * table, a CRC per chunk); the standby also reads the JSON one (snapshot.ts), which a primary of
 * an earlier version sends. A chunk larger than a transport message is sent in parts: the
 * standby asks for part 0, learns how many there are, and fetches the rest. The primary encodes
 * each chunk once, when it is first asked for, so it encodes chunk i+1 while the standby decodes
 * chunk i.
 */
import {
  decodeBinaryChunk,
  encodeBinaryChunk,
  isBinaryChunk,
} from '../domain/snapshot/binaryChunk.ts';
import { decodeChunk } from '../domain/snapshot/jsonChunk.ts';
import { SnapshotBuilder } from '../domain/snapshot/snapshotBuilder.ts';
import { snapshotChunkCount, snapshotChunks } from '../domain/snapshot/chunks.ts';
import type { SnapshotChunk } from '../domain/snapshot/chunks.ts';
import type { MetadataState } from '../domain/model/types.ts';
import type { Clock } from '../ports/clock.ts';
import { AdminError, jsonReply, parseRequest, partReply, type AdminClient } from './adminApi.ts';

/** What `syncStart` answers: a session on a state frozen at `appliedSeq`. */
export interface SyncStartReply {
  readonly syncId: string;
  /** Number of chunks. */
  readonly total: number;
  readonly appliedSeq: number;
  /** The stream sequence of the message holding entry `appliedSeq` on the primary. */
  readonly lastStreamSeq: number;
  readonly objectCount: number;
}

/** What `syncChunk` asks for. */
export interface SyncChunkRequest {
  readonly syncId: string;
  readonly index: number;
  readonly part: number;
}

export interface FullSyncSourceOptions {
  /** The primary's committed state and its stream seq, read when a sync starts. */
  readonly committed: () => { readonly state: MetadataState; readonly lastStreamSeq: number };
  readonly clock: Clock;
  /** Records per chunk (default 10,000). */
  readonly chunkSize?: number;
  /** Largest part sent in one reply (bytes; default 900 KiB, under NATS' 1 MiB max_payload). */
  readonly maxPartBytes?: number;
  /** A session nobody asked anything of for this long is dropped (ms; default 60 s). */
  readonly idleMs?: number;
  /** Most sessions open at once; the oldest is dropped for a new one (default 4). */
  readonly maxSessions?: number;
}

interface Session {
  readonly id: string;
  readonly chunks: Generator<SnapshotChunk, void, undefined>;
  readonly total: number;
  index: number;
  bytes: Uint8Array | undefined;
  lastUsed: number;
}

/** The primary's side of full sync: sessions on frozen states, served chunk by chunk. */
export class FullSyncSource {
  readonly #sessions = new Map<string, Session>();
  readonly #chunkSize: number;
  readonly #maxPartBytes: number;
  readonly #idleMs: number;
  readonly #maxSessions: number;
  #next = 0;

  constructor(private readonly options: FullSyncSourceOptions) {
    this.#chunkSize = options.chunkSize ?? 10_000;
    this.#maxPartBytes = Math.max(1024, options.maxPartBytes ?? 900 * 1024);
    this.#idleMs = options.idleMs ?? 60_000;
    this.#maxSessions = options.maxSessions ?? 4;
  }

  /** Open sessions. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Starts a session on the committed state as it is now. */
  start(): SyncStartReply {
    this.#expire();
    while (this.#sessions.size >= this.#maxSessions) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const { state, lastStreamSeq } = this.options.committed();
    const total = snapshotChunkCount(state, this.#chunkSize);
    const id = `${this.options.clock.monotonicNow().toString(36)}-${(this.#next++).toString(36)}`;
    this.#sessions.set(id, {
      id,
      chunks: snapshotChunks(state, this.#chunkSize),
      total,
      index: -1,
      bytes: undefined,
      lastUsed: this.options.clock.monotonicNow(),
    });
    return {
      syncId: id,
      total,
      appliedSeq: state.appliedSeq,
      lastStreamSeq,
      objectCount: state.objectCount,
    };
  }

  /** Part `part` of chunk `index` of a session, framed; chunks must be asked for in order. */
  chunk(request: SyncChunkRequest): Uint8Array {
    const session = this.#sessions.get(String(request.syncId));
    if (session === undefined)
      throw new AdminError('syncChunk', 'SYNC_GONE', true, `no sync session ${request.syncId}`);
    session.lastUsed = this.options.clock.monotonicNow();
    if (request.index === session.index + 1) {
      const next = session.chunks.next();
      if (next.done === true)
        throw new AdminError('syncChunk', 'BAD_REQUEST', false, `no chunk ${request.index}`);
      session.bytes = encodeBinaryChunk(next.value);
      session.index = request.index;
    } else if (request.index !== session.index || session.bytes === undefined) {
      this.#sessions.delete(session.id);
      throw new AdminError(
        'syncChunk',
        'SYNC_ORDER',
        true,
        `chunk ${request.index} asked after chunk ${session.index}`,
      );
    }
    const bytes = session.bytes;
    const parts = Math.max(1, Math.ceil(bytes.length / this.#maxPartBytes));
    if (!Number.isInteger(request.part) || request.part < 0 || request.part >= parts)
      throw new AdminError('syncChunk', 'BAD_REQUEST', false, `no part ${request.part}`);
    const from = request.part * this.#maxPartBytes;
    const reply = partReply(parts, bytes.subarray(from, from + this.#maxPartBytes));
    if (request.index === session.total - 1 && request.part === parts - 1)
      this.#sessions.delete(session.id);
    return reply;
  }

  /** The admin ops this source answers. */
  ops(): Record<'syncStart' | 'syncChunk', (body: Uint8Array) => Uint8Array> {
    return {
      syncStart: () => jsonReply(this.start()),
      syncChunk: (body) => this.chunk(parseRequest<SyncChunkRequest>('syncChunk', body)),
    };
  }

  /** Drops every session. */
  clear(): void {
    this.#sessions.clear();
  }

  #expire(): void {
    const now = this.options.clock.monotonicNow();
    for (const [id, session] of this.#sessions)
      if (now - session.lastUsed > this.#idleMs) this.#sessions.delete(id);
  }
}

/** A rebuilt state and what fetching it took. */
export interface FullSyncResult {
  readonly state: MetadataState;
  readonly lastStreamSeq: number;
  readonly chunks: number;
  /** Bytes of chunk payload received (framing excluded). */
  readonly bytes: number;
}

/**
 * Fetches a full sync from the primary and rebuilds the state. Resolves with a frozen state
 * whose `stateDigest` equals the primary's at the frozen seq; rejects with the transport's
 * errors, {@link AdminError}, `SnapshotCodecError` or `SnapshotError` (nothing is installed),
 * and with `signal`'s reason once it aborts.
 */
export async function fetchFullSync(
  admin: AdminClient,
  signal?: AbortSignal,
): Promise<FullSyncResult> {
  const start = await admin.json<SyncStartReply>('syncStart', {});
  const fetchChunk = async (index: number): Promise<Uint8Array> => {
    const first = await admin.part('syncChunk', { syncId: start.syncId, index, part: 0 });
    if (first.parts === 1) return first.bytes;
    const pieces = [first.bytes];
    for (let part = 1; part < first.parts; part++) {
      const next = await admin.part('syncChunk', { syncId: start.syncId, index, part });
      pieces.push(next.bytes);
    }
    const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const piece of pieces) {
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  };
  const builder = new SnapshotBuilder();
  let bytes = 0;
  let pending = fetchChunk(0);
  for (let index = 0; index < start.total; index++) {
    const encoded = await pending;
    // Cancelled (the node stops): no more chunks are asked for.
    signal?.throwIfAborted();
    // Ask for the next chunk before decoding this one: the primary encodes while we decode.
    if (index + 1 < start.total) {
      pending = fetchChunk(index + 1);
      pending.catch(() => undefined);
    }
    bytes += encoded.length;
    builder.add(isBinaryChunk(encoded) ? decodeBinaryChunk(encoded) : decodeChunk(encoded));
  }
  const state = builder.finish();
  return { state, lastStreamSeq: start.lastStreamSeq, chunks: start.total, bytes };
}
