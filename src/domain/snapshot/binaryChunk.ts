/**
 * The binary encoding of a snapshot chunk ({@link SnapshotChunk}): what checkpoints store and
 * what full sync can send. Pure: bytes in, bytes out.
 *
 * Layout (version 1; version 2, magic "USB2", differs only in `segment`, which carries
 * `uint base` after `nodeId`: written only when some segment has a base, so a state without
 * slices encodes exactly as version 1, and a version 2 chunk without a base is refused):
 * ```
 * "USB1" | u32 crc (big-endian, CRC32 of the body; for "USB2" seeded with 0x32) | body
 * body  = uint index | uint total | uint appliedSeq | uint epoch | uint logTime
 *       | uint sessionsSweptAt | str epochNodeId | u8 hasDigest | (u32 stateDigest)?
 *       | u32 namesOffset (from the start of the chunk)
 *       | uint nSegments | segment*
 *       | uint nSessions | session*
 *       | uint nObjects  | object*
 *       | uint nNames | str*          at namesOffset: the segment and node ids replicas name
 * segment = str id | str nodeId | uint size | uint used | uint nFree | (uint offset | uint length)*
 * session = str sessionId | uint oldestPending | uint lastSeq | uint lastTs | uint nResults
 *           | (uint requestNo | uint seq | u8 op | str key | u8 hasPlacement | replicas?)*
 * object  = str key | uint size | uint lastSeq | replicas
 * replicas = uint n | (uint segmentName | uint nodeName | uint offset | uint length | u8 complete)*
 * ```
 * `uint` is an unsigned LEB128 varint of a safe integer (at most 8 bytes), `str` a uint byte
 * length and UTF-8. Replicas name their segment and node by index into the names table, which the encoder
 * collects while it writes the records. The CRC
 * is checked before anything is parsed, so any change of up to 4 consecutive bytes (a single
 * byte in particular) is rejected; the magic tells this encoding from the JSON one
 * (snapshot.ts, "USC1").
 */
import CRC32 from 'crc-32';
import { OP_TYPES } from '../log/entry.ts';
import { SnapshotCodecError, type SnapshotChunk } from './chunks.ts';
import { FieldReader, FieldWriter, garbled } from './chunkFields.ts';
import type {
  FreeRange,
  ObjectRecord,
  Replica,
  Segment,
  SessionRecord,
  SessionResult,
} from '../model/types.ts';

const MAGIC = [0x55, 0x53, 0x42]; // "USB" then the version digit
const VERSION_1 = 0x31; // "1"
const VERSION_2 = 0x32; // "2": segments carry their base
const HEADER_BYTES = 8;
const OP_CODE = new Map<string, number>(OP_TYPES.map((op, i) => [op, i]));

/** The CRC's seed: 0 for version 1 (as before versions), the version byte for version 2, so a
 * changed version byte fails the CRC. */
function crcSeed(withBases: boolean): number {
  return withBases ? VERSION_2 : 0;
}

/** True when `bytes` starts like a binary chunk (it may still be corrupt). */
export function isBinaryChunk(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    MAGIC.every((b, i) => bytes[i] === b) &&
    (bytes[3] === VERSION_1 || bytes[3] === VERSION_2)
  );
}

/** The index of `name` in the names table, added on first use. */
function nameIndex(names: Map<string, number>, name: string): number {
  let index = names.get(name);
  if (index === undefined) {
    index = names.size;
    names.set(name, index);
  }
  return index;
}

function writeReplicas(
  w: FieldWriter,
  names: Map<string, number>,
  replicas: readonly Replica[],
): void {
  w.uint(replicas.length);
  for (const r of replicas) {
    w.uint(nameIndex(names, r.segmentId));
    w.uint(nameIndex(names, r.nodeId));
    w.uint(r.offset);
    w.uint(r.length);
    w.u8(r.status === 'complete' ? 1 : 0);
  }
}

/**
 * The bytes of `chunk` in the binary layout of the module doc. Throws RangeError for a field
 * that is not a non-negative safe integer (a state never holds one).
 */
export function encodeBinaryChunk(chunk: SnapshotChunk): Uint8Array {
  const w = new FieldWriter(
    HEADER_BYTES,
    128 + chunk.segments.length * 64 + chunk.objects.length * 64,
  );
  w.uint(chunk.index);
  w.uint(chunk.total);
  w.uint(chunk.appliedSeq);
  w.uint(chunk.epoch);
  w.uint(chunk.logTime);
  w.uint(chunk.sessionsSweptAt);
  w.str(chunk.epochNodeId);
  if (chunk.stateDigest === null) w.u8(0);
  else {
    w.u8(1);
    w.u32(chunk.stateDigest >>> 0);
  }
  // The names table goes last (collected while the records are written); its offset is here.
  const namesAt = w.at;
  w.u32(0);
  const names = new Map<string, number>();
  const withBases = chunk.segments.some((s) => (s.base ?? 0) > 0);
  w.uint(chunk.segments.length);
  for (const s of chunk.segments) {
    w.str(s.id);
    w.str(s.nodeId);
    if (withBases) w.uint(s.base ?? 0);
    w.uint(s.size);
    w.uint(s.used);
    w.uint(s.free.length);
    for (const f of s.free) {
      w.uint(f.offset);
      w.uint(f.length);
    }
  }
  w.uint(chunk.sessions.length);
  for (const s of chunk.sessions) {
    w.str(s.sessionId);
    w.uint(s.oldestPending);
    w.uint(s.lastSeq);
    w.uint(s.lastTs);
    w.uint(s.results.length);
    for (const r of s.results) {
      w.uint(r.requestNo);
      w.uint(r.seq);
      w.u8(OP_CODE.get(r.op) ?? 0);
      w.str(r.key);
      if (r.replicas === undefined) w.u8(0);
      else {
        w.u8(1);
        writeReplicas(w, names, r.replicas);
      }
    }
  }
  w.uint(chunk.objects.length);
  for (const o of chunk.objects) {
    w.str(o.key);
    w.uint(o.size);
    w.uint(o.lastSeq);
    writeReplicas(w, names, o.replicas);
  }
  const namesOffset = w.at;
  w.uint(names.size);
  for (const name of names.keys()) w.str(name);
  const end = w.at;
  w.at = namesAt;
  w.u32(namesOffset);
  const out = w.bytes.subarray(0, end);
  out.set([...MAGIC, withBases ? VERSION_2 : VERSION_1], 0);
  const crc = CRC32.buf(out.subarray(HEADER_BYTES), crcSeed(withBases)) >>> 0;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(4, crc);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

function readReplicas(r: FieldReader, names: readonly string[]): Replica[] {
  const n = r.count(5);
  const replicas = new Array<Replica>(n);
  for (let i = 0; i < n; i++) {
    const segmentId = names[r.uint()];
    const nodeId = names[r.uint()];
    if (segmentId === undefined || nodeId === undefined) garbled('a replica names no known id');
    const offset = r.uint();
    const length = r.uint();
    const status = r.flag('replica status') ? 'complete' : 'processing';
    replicas[i] = { segmentId, nodeId, offset, length, status };
  }
  return replicas;
}

/**
 * The chunk encoded in `bytes` by {@link encodeBinaryChunk}. Throws `SnapshotCodecError`:
 * `truncated` (too short, or a field runs past the end), `checksum` (the CRC does not match:
 * checked before anything is parsed), `garbled` (bad magic, bad field, trailing bytes).
 */
export function decodeBinaryChunk(bytes: Uint8Array): SnapshotChunk {
  if (bytes.length < HEADER_BYTES)
    throw new SnapshotCodecError('truncated', `${bytes.length} bytes`);
  if (!isBinaryChunk(bytes)) garbled('bad magic');
  const crc = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4);
  const withBases = bytes[3] === VERSION_2;
  if (CRC32.buf(bytes.subarray(HEADER_BYTES), crcSeed(withBases)) >>> 0 !== crc)
    throw new SnapshotCodecError('checksum', 'chunk CRC does not match');
  const r = new FieldReader(bytes, HEADER_BYTES);
  const index = r.uint();
  const total = r.uint();
  const appliedSeq = r.uint();
  const epoch = r.uint();
  const logTime = r.uint();
  const sessionsSweptAt = r.uint();
  const epochNodeId = r.str();
  const stateDigest = r.flag('digest flag') ? r.u32() : null;
  const namesOffset = r.u32();
  if (namesOffset < r.at || namesOffset >= bytes.length) garbled('names table offset');
  const recordsAt = r.at;
  r.at = namesOffset;
  const names = new Array<string>(r.count(1));
  for (let i = 0; i < names.length; i++) names[i] = r.str();
  if (r.at !== bytes.length) garbled(`${bytes.length - r.at} trailing bytes`);
  r.at = recordsAt;
  const segments = new Array<Segment>(r.count(5));
  for (let i = 0; i < segments.length; i++) {
    const id = r.str();
    const nodeId = r.str();
    const base = withBases ? r.uint() : 0;
    const size = r.uint();
    const used = r.uint();
    const free = new Array<FreeRange>(r.count(2));
    for (let f = 0; f < free.length; f++) free[f] = { offset: r.uint(), length: r.uint() };
    segments[i] =
      base > 0 ? { id, nodeId, base, size, used, free } : { id, nodeId, size, used, free };
  }
  // Version 2 is written only for a chunk with a base (the encoding is canonical): a changed
  // version byte cannot pass for the same chunk.
  if (withBases && !segments.some((s) => (s.base ?? 0) > 0)) garbled('version 2 without a base');
  const sessions = new Array<SessionRecord>(r.count(5));
  for (let i = 0; i < sessions.length; i++) {
    const sessionId = r.str();
    const oldestPending = r.uint();
    const lastSeq = r.uint();
    const lastTs = r.uint();
    const results = new Array<SessionResult>(r.count(5));
    for (let k = 0; k < results.length; k++) {
      const requestNo = r.uint();
      const seq = r.uint();
      const op = OP_TYPES[r.u8()];
      if (op === undefined) garbled('an unknown result op');
      const key = r.str();
      results[k] = r.flag('placement flag')
        ? { requestNo, seq, op, key, replicas: readReplicas(r, names) }
        : { requestNo, seq, op, key };
    }
    sessions[i] = { sessionId, oldestPending, lastSeq, lastTs, results };
  }
  const objects = new Array<ObjectRecord>(r.count(4));
  for (let i = 0; i < objects.length; i++) {
    const key = r.str();
    const size = r.uint();
    const lastSeq = r.uint();
    objects[i] = { key, size, replicas: readReplicas(r, names), lastSeq };
  }
  if (r.at !== namesOffset) garbled('the records do not end where the names table starts');
  return {
    index,
    total,
    appliedSeq,
    epoch,
    epochNodeId,
    logTime,
    sessionsSweptAt,
    segments,
    sessions,
    objects,
    stateDigest,
  };
}
