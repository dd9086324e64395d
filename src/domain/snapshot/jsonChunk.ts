/**
 * The JSON chunk encoding (version 1), kept to decode the chunks of nodes that predate the
 * binary encoding (binaryChunk.ts): `"USC1" | u32 crc (big-endian, CRC32 of the body) | body`,
 * where the body is UTF-8 JSON of a compact form: segments as `[id, nodeId, size, used,
 * [[offset, length], ...]]`, objects as `[key, size, lastSeq, [[segmentId, nodeId, offset,
 * length, complete ? 1 : 0], ...]]`.
 */
import CRC32 from 'crc-32';
import { OP_TYPES } from '../log/entry.ts';
import type {
  FreeRange,
  ObjectRecord,
  Replica,
  Segment,
  SessionRecord,
  SessionResult,
} from '../model/types.ts';
import { type SnapshotChunk, SnapshotCodecError } from './chunks.ts';

const MAGIC = [0x55, 0x53, 0x43, 0x31]; // "USC1"
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The sixth element, the segment's base, is there only when not 0. */
type WireSegment =
  | [string, string, number, number, [number, number][]]
  | [string, string, number, number, [number, number][], number];
type WireReplica = [string, string, number, number, 0 | 1];
type WireObject = [string, number, number, WireReplica[]];
type WireResult = [number, number, number, string, WireReplica[] | null];
type WireSession = [string, number, number, number, WireResult[]];
interface WireChunk {
  i: number;
  n: number;
  s: number;
  e: number;
  en: string;
  t: number;
  w: number;
  g: WireSegment[];
  x: WireSession[];
  o: WireObject[];
  d: number | null;
}

const OP_CODE = new Map<string, number>(OP_TYPES.map((op, i) => [op, i]));

function wireReplica(r: Replica): WireReplica {
  return [r.segmentId, r.nodeId, r.offset, r.length, r.status === 'complete' ? 1 : 0];
}

function replicaOf(rv: unknown): Replica {
  const r = arr(rv, 'replica');
  const status = r[4];
  if (status !== 0 && status !== 1) garbled('replica status');
  return {
    segmentId: str(r[0], 'replica segmentId'),
    nodeId: str(r[1], 'replica nodeId'),
    offset: int(r[2], 'replica offset'),
    length: int(r[3], 'replica length'),
    status: status === 1 ? 'complete' : 'processing',
  };
}

function sessionOf(value: unknown): SessionRecord {
  const s = arr(value, 'session');
  return {
    sessionId: str(s[0], 'sessionId'),
    oldestPending: int(s[1], 'oldestPending'),
    lastSeq: int(s[2], 'session lastSeq'),
    lastTs: int(s[3], 'session lastTs'),
    results: arr(s[4], 'results').map((rv): SessionResult => {
      const r = arr(rv, 'result');
      const op = OP_TYPES[int(r[2], 'result op')];
      if (op === undefined) garbled('result op');
      const result = {
        requestNo: int(r[0], 'requestNo'),
        seq: int(r[1], 'result seq'),
        op,
        key: str(r[3], 'result key'),
      };
      return r[4] === null
        ? result
        : { ...result, replicas: arr(r[4], 'placement').map(replicaOf) };
    }),
  };
}

/** The bytes of `chunk` (see the module doc): compact JSON behind a magic and a CRC32. */
export function encodeChunk(chunk: SnapshotChunk): Uint8Array {
  const wire: WireChunk = {
    i: chunk.index,
    n: chunk.total,
    s: chunk.appliedSeq,
    e: chunk.epoch,
    en: chunk.epochNodeId,
    t: chunk.logTime,
    w: chunk.sessionsSweptAt,
    g: chunk.segments.map((s): WireSegment => {
      const free = s.free.map((f): [number, number] => [f.offset, f.length]);
      return s.base !== undefined && s.base > 0
        ? [s.id, s.nodeId, s.size, s.used, free, s.base]
        : [s.id, s.nodeId, s.size, s.used, free];
    }),
    x: chunk.sessions.map((s) => [
      s.sessionId,
      s.oldestPending,
      s.lastSeq,
      s.lastTs,
      s.results.map((r): WireResult => [
        r.requestNo,
        r.seq,
        OP_CODE.get(r.op) ?? 0,
        r.key,
        r.replicas === undefined ? null : r.replicas.map(wireReplica),
      ]),
    ]),
    o: chunk.objects.map((o) => [o.key, o.size, o.lastSeq, o.replicas.map(wireReplica)]),
    d: chunk.stateDigest,
  };
  const body = encoder.encode(JSON.stringify(wire));
  const out = new Uint8Array(8 + body.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, CRC32.buf(body, 0) >>> 0);
  out.set(body, 8);
  return out;
}

function garbled(message: string): never {
  throw new SnapshotCodecError('garbled', message);
}

function int(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    garbled(`${what} is not a non-negative integer`);
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') garbled(`${what} is not a string`);
  return value;
}

function arr(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) garbled(`${what} is not an array`);
  return value as unknown[];
}

/**
 * The chunk encoded in `bytes`. Throws {@link SnapshotCodecError}: `truncated` (too short),
 * `checksum` (the CRC does not match: checked before anything is parsed), `garbled` (bad magic
 * or fields).
 */
export function decodeChunk(bytes: Uint8Array): SnapshotChunk {
  if (bytes.length < 8) throw new SnapshotCodecError('truncated', `${bytes.length} bytes`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) garbled('bad magic');
  const body = bytes.subarray(8);
  const crc = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  if (CRC32.buf(body, 0) >>> 0 !== crc)
    throw new SnapshotCodecError('checksum', 'chunk CRC does not match');
  let wire: unknown;
  try {
    wire = JSON.parse(decoder.decode(body));
  } catch (cause) {
    throw new SnapshotCodecError('garbled', 'body is not JSON', { cause });
  }
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) garbled('not an object');
  const w = wire as Record<string, unknown>;
  const segments = arr(w['g'], 'segments').map((value): Segment => {
    const s = arr(value, 'segment');
    const base = s[5] === undefined ? 0 : int(s[5], 'segment base');
    return {
      id: str(s[0], 'segment id'),
      nodeId: str(s[1], 'segment nodeId'),
      ...(base > 0 ? { base } : {}),
      size: int(s[2], 'segment size'),
      used: int(s[3], 'segment used'),
      free: arr(s[4], 'free ranges').map((f): FreeRange => {
        const range = arr(f, 'free range');
        return { offset: int(range[0], 'free offset'), length: int(range[1], 'free length') };
      }),
    };
  });
  const objects = arr(w['o'], 'objects').map((value): ObjectRecord => {
    const o = arr(value, 'object');
    return {
      key: str(o[0], 'key'),
      size: int(o[1], 'size'),
      lastSeq: int(o[2], 'lastSeq'),
      replicas: arr(o[3], 'replicas').map(replicaOf),
    };
  });
  // Chunks of a node from before sessions carry none.
  const sessions = w['x'] === undefined ? [] : arr(w['x'], 'sessions').map(sessionOf);
  const digest = w['d'];
  return {
    index: int(w['i'], 'index'),
    total: int(w['n'], 'total'),
    appliedSeq: int(w['s'], 'appliedSeq'),
    epoch: int(w['e'], 'epoch'),
    epochNodeId: str(w['en'], 'epochNodeId'),
    logTime: w['t'] === undefined ? 0 : int(w['t'], 'logTime'),
    sessionsSweptAt: w['w'] === undefined ? 0 : int(w['w'], 'sessionsSweptAt'),
    segments,
    sessions,
    objects,
    stateDigest: digest === null ? null : int(digest, 'stateDigest'),
  };
}
