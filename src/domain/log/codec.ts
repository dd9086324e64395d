/**
 * Binary codec of OpLog entries and batches (version 1).
 *
 * Entry frame (big-endian):
 * ```
 * u8 version=1 | u8 op | f64 seq | f64 epoch | f64 ts | u32 checksum | u32 prefixHash
 * | u32 keyLen | key (UTF-8) | u32 payloadLen | payload | u32 frameCrc
 * ```
 * `frameCrc` is CRC32 of every byte before it, checked before anything else is read, so any
 * change of up to 4 consecutive bytes (in particular any single byte) is rejected.
 *
 * Batch (big-endian): `u8 version=1 | u8 'B' | u32 count | (u32 frameLen | frame)* | u32 batchCrc`.
 */
import CRC32 from 'crc-32';
import { prefixHash } from './checksum.ts';
import { OP_TYPES, type OpLogEntry } from './entry.ts';
import { MAX_KEY_BYTES, MAX_SEGMENT_ID_BYTES } from '../model/limits.ts';
import { UnderstudyError } from '../model/understudyError.ts';

export type CodecErrorReason = 'truncated' | 'garbled' | 'checksum' | 'signature';

/** Bytes that are not a valid encoded entry or batch. Never retryable: the bytes are bad. */
export class CodecError extends UnderstudyError {
  override readonly name = 'CodecError';
  readonly code = 'CODEC';
  override readonly retryable = false;
  constructor(
    readonly reason: CodecErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${reason}: ${message}`, options);
  }
}

const VERSION = 1;
const BATCH_TAG = 0x42; // 'B'
const HEADER_BYTES = 1 + 1 + 8 * 3 + 4 + 4 + 4;
const MIN_ENTRY_BYTES = HEADER_BYTES + 4 + 4;
/** Largest payload accepted by the decoder (64 MiB). */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const OP_CODE = new Map<string, number>(OP_TYPES.map((op, i) => [op, i]));
const MAX_KEY = Math.max(MAX_KEY_BYTES, MAX_SEGMENT_ID_BYTES);

function crc(bytes: Uint8Array): number {
  return CRC32.buf(bytes, 0) >>> 0;
}

function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function isSafeNonNegative(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The checks of {@link checkEntryFields} that need no hashing (`keyLength`: UTF-8 bytes). */
function checkEntryShape(entry: OpLogEntry, keyLength: number): void {
  if (!isSafeNonNegative(entry.seq) || entry.seq < 1)
    throw new CodecError('garbled', `bad seq ${String(entry.seq)}`);
  if (!isSafeNonNegative(entry.epoch))
    throw new CodecError('garbled', `bad epoch ${String(entry.epoch)}`);
  if (!isSafeNonNegative(entry.ts)) throw new CodecError('garbled', `bad ts ${String(entry.ts)}`);
  if (!OP_CODE.has(entry.op)) throw new CodecError('garbled', `bad op ${String(entry.op)}`);
  if (!isU32(entry.checksum) || !isU32(entry.prefixHash))
    throw new CodecError('garbled', 'bad checksum fields');
  if (keyLength > MAX_KEY) throw new CodecError('garbled', `key longer than ${MAX_KEY} bytes`);
  if (entry.payload.length > MAX_PAYLOAD_BYTES)
    throw new CodecError('garbled', `payload over ${MAX_PAYLOAD_BYTES} bytes`);
}

function checkEntryFields(entry: OpLogEntry, keyBytes: Uint8Array): void {
  checkEntryShape(entry, keyBytes.length);
  if (entry.checksum !== crc(entry.payload))
    throw new CodecError('checksum', `entry ${entry.seq}: checksum != CRC32(payload)`);
  if (entry.prefixHash !== prefixHash(entry.key))
    throw new CodecError('checksum', `entry ${entry.seq}: prefixHash does not match key`);
}

/**
 * The frames of entries made by {@link frameEntry}, and the entries {@link decodeEntry} checked:
 * both are consistent (checksum, prefixHash) by construction, so they are not hashed again.
 */
const frames = new WeakMap<OpLogEntry, Uint8Array>();
const checked = new WeakSet<OpLogEntry>();

/** Writes the frame of an entry whose key is `keyBytes` into `out` (exactly its size). */
function writeFrame(out: Uint8Array, entry: OpLogEntry, keyBytes: Uint8Array): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  writeHeader(view, 0, entry, keyBytes.length);
  let at = HEADER_BYTES;
  out.set(keyBytes, at);
  at += keyBytes.length;
  view.setUint32(at, entry.payload.length);
  at += 4;
  if (out.buffer !== entry.payload.buffer || out.byteOffset + at !== entry.payload.byteOffset)
    out.set(entry.payload, at);
  at += entry.payload.length;
  view.setUint32(at, crc(out.subarray(0, at)));
}

/** Writes a frame's header (everything before the key) at `at` of `view`. */
function writeHeader(view: DataView, at: number, entry: OpLogEntry, keyLength: number): void {
  view.setUint8(at, VERSION);
  view.setUint8(at + 1, OP_CODE.get(entry.op) ?? 0);
  view.setFloat64(at + 2, entry.seq);
  view.setFloat64(at + 10, entry.epoch);
  view.setFloat64(at + 18, entry.ts);
  view.setUint32(at + 26, entry.checksum);
  view.setUint32(at + 30, entry.prefixHash);
  view.setUint32(at + 34, keyLength);
}

/**
 * New frames are cut from a shared slab rather than each from an ArrayBuffer of its own: a
 * small typed array of its own costs an allocation outside the heap and its tracking by the
 * GC (measured: `frameEntry` and the GC were a quarter of the primary's time at 9,500
 * writes/s). A slab lives as long as any entry framed in it.
 */
const SLAB_BYTES = 256 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabView = new DataView(slab.buffer);
let slabAt = 0;

/** Makes room for a frame of at most `bytes` in the slab (a fresh slab when it lacks room). */
function reserve(bytes: number): void {
  if (slabAt + bytes <= slab.length) return;
  slab = new Uint8Array(Math.max(SLAB_BYTES, bytes));
  slabView = new DataView(slab.buffer);
  slabAt = 0;
}

/**
 * Makes the entry of a new event and its frame at once, from the payload's text: key and text
 * are encoded straight into the frame (cut from a shared slab), payload and key hashed once,
 * and the entry's `payload` is a view into the frame. {@link encodeEntry} and
 * {@link encodeBatch} then use that frame as it is. Throws CodecError for bad fields.
 */
export function frameEntry(
  head: Pick<OpLogEntry, 'seq' | 'epoch' | 'ts' | 'op' | 'key'>,
  payloadText: string,
): OpLogEntry {
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  reserve(MIN_ENTRY_BYTES + 3 * (head.key.length + payloadText.length));
  const start = slabAt;
  const keyAt = start + HEADER_BYTES;
  const keyLength = encoder.encodeInto(
    head.key,
    slab.subarray(keyAt, keyAt + 3 * head.key.length),
  ).written;
  const payloadAt = keyAt + keyLength + 4;
  const payloadLength = encoder.encodeInto(
    payloadText,
    slab.subarray(payloadAt, payloadAt + 3 * payloadText.length),
  ).written;
  const end = payloadAt + payloadLength + 4;
  const frame = slab.subarray(start, end);
  const payload = slab.subarray(payloadAt, payloadAt + payloadLength);
  const entry: OpLogEntry = {
    seq: head.seq,
    epoch: head.epoch,
    ts: head.ts,
    op: head.op,
    key: head.key,
    payload,
    checksum: crc(payload),
    prefixHash: CRC32.buf(slab.subarray(keyAt, keyAt + Math.min(8, keyLength)), 0) >>> 0,
  };
  checkEntryShape(entry, keyLength);
  writeHeader(slabView, start, entry, keyLength);
  slabView.setUint32(keyAt + keyLength, payloadLength);
  slabView.setUint32(end - 4, crc(slab.subarray(start, end - 4)));
  slabAt = end;
  frames.set(entry, frame);
  return entry;
}

/**
 * True when `entry` was made by {@link frameEntry} or checked by {@link decodeEntry}: its
 * checksum matches its payload and its prefixHash its key.
 */
export function isCheckedEntry(entry: OpLogEntry): boolean {
  return checked.has(entry) || frames.has(entry);
}

/** Encodes one entry. Throws CodecError when the entry itself is inconsistent (bad checksum...). */
export function encodeEntry(entry: OpLogEntry): Uint8Array {
  const framed = frames.get(entry);
  if (framed !== undefined) return framed;
  const keyBytes = encoder.encode(entry.key);
  checkEntryFields(entry, keyBytes);
  const out = new Uint8Array(MIN_ENTRY_BYTES + keyBytes.length + entry.payload.length);
  writeFrame(out, entry, keyBytes);
  return out;
}

/** Decodes one entry, validating its frame CRC, lengths, op code, checksum and prefixHash. */
export function decodeEntry(bytes: Uint8Array): OpLogEntry {
  if (bytes.length < MIN_ENTRY_BYTES)
    throw new CodecError('truncated', `entry of ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length - 4;
  if (view.getUint32(end) !== crc(bytes.subarray(0, end))) {
    throw new CodecError('checksum', 'entry frame CRC mismatch');
  }
  if (view.getUint8(0) !== VERSION)
    throw new CodecError('garbled', `unknown version ${view.getUint8(0)}`);
  const op = OP_TYPES[view.getUint8(1)];
  if (op === undefined) throw new CodecError('garbled', `unknown op code ${view.getUint8(1)}`);
  const keyLen = view.getUint32(34);
  if (keyLen > MAX_KEY) throw new CodecError('garbled', `key length ${keyLen}`);
  if (HEADER_BYTES + keyLen + 4 > end) throw new CodecError('truncated', 'key runs past the frame');
  const payloadLen = view.getUint32(HEADER_BYTES + keyLen);
  if (HEADER_BYTES + keyLen + 4 + payloadLen !== end) {
    throw new CodecError('garbled', 'payload length does not match the frame');
  }
  let key: string;
  try {
    key = decoder.decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + keyLen));
  } catch (cause) {
    throw new CodecError('garbled', 'key is not UTF-8', { cause });
  }
  const payloadAt = HEADER_BYTES + keyLen + 4;
  const entry: OpLogEntry = {
    seq: view.getFloat64(2),
    epoch: view.getFloat64(10),
    ts: view.getFloat64(18),
    op,
    key,
    payload: bytes.slice(payloadAt, payloadAt + payloadLen),
    checksum: view.getUint32(26),
    prefixHash: view.getUint32(30),
  };
  checkEntryFields(entry, bytes.subarray(HEADER_BYTES, HEADER_BYTES + keyLen));
  checked.add(entry);
  return entry;
}

/** Encodes consecutive entries as one batch (count, frames, batch CRC). */
export function encodeBatch(entries: readonly OpLogEntry[]): Uint8Array {
  checkContiguous(entries);
  const frames = entries.map(encodeEntry);
  const total = 2 + 4 + frames.reduce((n, f) => n + 4 + f.length, 0) + 4;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint8(0, VERSION);
  view.setUint8(1, BATCH_TAG);
  view.setUint32(2, frames.length);
  let at = 6;
  for (const frame of frames) {
    view.setUint32(at, frame.length);
    out.set(frame, at + 4);
    at += 4 + frame.length;
  }
  view.setUint32(at, crc(out.subarray(0, at)));
  return out;
}

/** Decodes a batch, validating its CRC, every frame, and that the seqs are consecutive. */
export function decodeBatch(bytes: Uint8Array): OpLogEntry[] {
  if (bytes.length < 10) throw new CodecError('truncated', `batch of ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length - 4;
  if (view.getUint32(end) !== crc(bytes.subarray(0, end))) {
    throw new CodecError('checksum', 'batch CRC mismatch');
  }
  if (view.getUint8(0) !== VERSION || view.getUint8(1) !== BATCH_TAG) {
    throw new CodecError('garbled', 'not a version 1 batch');
  }
  const count = view.getUint32(2);
  if (count > (end - 6) / (4 + MIN_ENTRY_BYTES))
    throw new CodecError('garbled', `count ${count} too large`);
  const entries: OpLogEntry[] = [];
  let at = 6;
  for (let i = 0; i < count; i++) {
    if (at + 4 > end) throw new CodecError('truncated', `frame ${i} header past the end`);
    const len = view.getUint32(at);
    if (at + 4 + len > end) throw new CodecError('truncated', `frame ${i} past the end`);
    entries.push(decodeEntry(bytes.subarray(at + 4, at + 4 + len)));
    at += 4 + len;
  }
  if (at !== end) throw new CodecError('garbled', `${end - at} trailing bytes`);
  checkContiguous(entries);
  return entries;
}

function checkContiguous(entries: readonly OpLogEntry[]): void {
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1];
    const cur = entries[i];
    if (prev !== undefined && cur !== undefined && cur.seq !== prev.seq + 1) {
      throw new CodecError('garbled', `seq ${cur.seq} follows ${prev.seq}`);
    }
  }
}
