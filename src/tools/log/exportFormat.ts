/**
 * The NDJSON format of `understudy export` (read back by `understudy replay --file`).
 *
 * One JSON object per line. An optional header line `{"format":"understudy-oplog",...}`
 * names the cluster and the range; every other line is one OpLog entry: the readable
 * rendering of `entryToJSON` (seq, epoch, ts, time, op, key, checksum, prefixHash, event,
 * origin when the entry answers a client request)
 * plus `raw`, the base64 of the entry's binary frame (`encodeEntry`). The frame carries its
 * own CRC and the payload's checksum, so a changed byte anywhere in `raw` is detected, and a
 * readable field that disagrees with `raw` is detected too.
 *
 * Version 2 adds checkpoint lines: an export of a stream trimmed below its checkpoints starts
 * with the checkpoint it begins from, one line per frame (`checkpoint`: the checkpoint's
 * metadata, `chunk`: the frame's index, `raw`: base64 of the frame, whose chunk carries its own
 * CRC), so that `replay --file` folds from it. Version 1 files (no checkpoint lines) still read.
 */
import { CodecError, decodeEntry, encodeEntry } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import { entryToJSON, fromEntry } from '../../domain/log/eventCodec.ts';
import type { LoggedEvent, MetadataState } from '../../domain/model/types.ts';
import { checkpointFrames } from '../../domain/snapshot/checkpoint.ts';
import type { CheckpointInfo } from '../../ports/checkpointStore.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** The `format` field of an export's header line. */
export const EXPORT_FORMAT = 'understudy-oplog';
/** The version of the line format this code writes and reads. */
export const EXPORT_VERSION = 2;
/** The versions this code reads. */
const READABLE_VERSIONS: readonly unknown[] = [1, 2];

/** The first line of an export: where and when it was taken. */
export interface ExportHeader {
  readonly format: typeof EXPORT_FORMAT;
  readonly version: 1 | typeof EXPORT_VERSION;
  readonly cluster: string;
  /** ISO time the export started. */
  readonly exportedAt: string;
  /** The first entry seq the export was asked for. */
  readonly fromSeq: number;
  /** The last entry seq asked for; null: to the log's end at `exportedAt`. */
  readonly toSeq: number | null;
}

/** Where a bad entry was found: its seq when readable, and its line or stream message. */
export interface EntryPosition {
  /** The entry's seq, when it could be read (from the frame, or else the readable field). */
  readonly seq?: number | undefined;
  /** 1-based line of an export file. */
  readonly line?: number | undefined;
  /** The stream message that held it (live stream). */
  readonly streamSeq?: number | undefined;
}

/**
 * An entry that cannot be trusted: unreadable JSON or base64, a frame or payload checksum
 * mismatch, readable fields that disagree with the raw frame, a seq out of order, or an
 * event that does not fold. Never retryable: the bytes are bad.
 */
export class CorruptEntryError extends UnderstudyError {
  override readonly name = 'CorruptEntryError';
  readonly code = 'CORRUPT_ENTRY';
  override readonly retryable = false;
  readonly seq: number | undefined;
  readonly line: number | undefined;
  readonly streamSeq: number | undefined;
  constructor(
    position: EntryPosition,
    /** What is wrong, without the position. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${describePosition(position)}: ${reason}`, options);
    this.seq = position.seq;
    this.line = position.line;
    this.streamSeq = position.streamSeq;
  }
}

/** "entry at seq 7 (line 8)", "entry on line 8 (seq unreadable)", "... (stream message 3)". */
export function describePosition(position: EntryPosition): string {
  const where: string[] = [];
  if (position.line !== undefined) where.push(`line ${position.line}`);
  if (position.streamSeq !== undefined) where.push(`stream message ${position.streamSeq}`);
  if (position.seq !== undefined) {
    return `entry at seq ${position.seq}${where.length > 0 ? ` (${where.join(', ')})` : ''}`;
  }
  return `entry ${where.length > 0 ? `on ${where.join(', ')} ` : ''}(seq unreadable)`;
}

/** The header line (no newline). */
export function exportHeaderLine(header: Omit<ExportHeader, 'format' | 'version'>): string {
  const full: ExportHeader = { format: EXPORT_FORMAT, version: EXPORT_VERSION, ...header };
  return JSON.stringify(full);
}

/** The line of one entry (no newline). Throws CodecError for an inconsistent entry. */
export function exportEntryLine(entry: OpLogEntry): string {
  const raw = Buffer.from(encodeEntry(entry)).toString('base64');
  return JSON.stringify({ ...entryToJSON(entry), raw });
}

/** A verified entry read from an export line. */
export interface ParsedEntry {
  readonly kind: 'entry';
  readonly entry: OpLogEntry;
  readonly logged: LoggedEvent;
  readonly line: number;
}

/** One frame of the checkpoint an export starts from (not yet checked: the reader does). */
export interface ParsedCheckpointFrame {
  readonly kind: 'checkpoint';
  readonly checkpoint: CheckpointInfo;
  readonly chunk: number;
  readonly frame: Uint8Array;
  readonly line: number;
}

/** One line of an export: a header, a verified entry, or nothing (a blank line). */
export type ParsedLine =
  { readonly kind: 'header'; readonly header: ExportHeader } | ParsedEntry | ParsedCheckpointFrame;

/** The lines of checkpoint `checkpoint` whose state is `state` (no newlines). */
export function* exportCheckpointLines(
  checkpoint: CheckpointInfo,
  state: MetadataState,
): Generator<string, void, undefined> {
  let chunk = 0;
  for (const frame of checkpointFrames(state)) {
    yield JSON.stringify({ checkpoint, chunk, raw: Buffer.from(frame).toString('base64') });
    chunk += 1;
  }
}

const CHECKPOINT_INTS = [
  'appliedSeq',
  'lastStreamSeq',
  'stateDigest',
  'epoch',
  'objectCount',
  'sessionCount',
  'createdAt',
  'bytes',
] as const;

function parseCheckpointLine(value: Record<string, unknown>, line: number): ParsedCheckpointFrame {
  const checkpoint = value['checkpoint'];
  const chunk = value['chunk'];
  const raw = value['raw'];
  const bad = (why: string): CorruptEntryError =>
    new CorruptEntryError({ line }, `checkpoint line: ${why}`);
  if (!isRecord(checkpoint) || typeof checkpoint['name'] !== 'string') throw bad('no checkpoint');
  if (typeof checkpoint['writer'] !== 'string') throw bad('no writer');
  for (const key of CHECKPOINT_INTS) {
    const n = checkpoint[key];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw bad(`bad ${key}`);
  }
  if (typeof chunk !== 'number' || !Number.isSafeInteger(chunk) || chunk < 0) {
    throw bad('bad chunk');
  }
  const bytes =
    typeof raw === 'string' && BASE64.test(raw) ? Buffer.from(raw, 'base64') : undefined;
  if (bytes === undefined || bytes.toString('base64') !== raw) {
    throw bad('`raw` is missing or not base64');
  }
  return {
    kind: 'checkpoint',
    checkpoint: checkpoint as unknown as CheckpointInfo,
    chunk,
    frame: new Uint8Array(bytes),
    line,
  };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const SEQ_FIELD = /"seq"\s*:\s*(\d{1,16})\b/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  if (isRecord(a)) {
    if (!isRecord(b)) return false;
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]))
    );
  }
  return Object.is(a, b);
}

/** The readable fields of an entry line: each must agree with the raw frame. */
const READABLE_FIELDS = [
  'seq',
  'epoch',
  'ts',
  'time',
  'op',
  'key',
  'checksum',
  'prefixHash',
  'event',
  'origin',
] as const;

/**
 * Parses and verifies one line of an export (`line` is its 1-based number, for messages).
 * Returns undefined for a blank line. Throws {@link CorruptEntryError} naming the entry's
 * seq when it is readable (else only the line) for: bad JSON, a missing or non-base64 `raw`,
 * a frame whose CRC, payload checksum or prefixHash does not match, a payload that is not a
 * valid event, or a readable field (seq, epoch, ts, time, op, key, checksums, event, origin)
 * that disagrees with the frame.
 */
export function parseExportLine(text: string, line: number): ParsedLine | undefined {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const seq = SEQ_FIELD.exec(text)?.[1];
    throw new CorruptEntryError(
      { seq: seq === undefined ? undefined : Number(seq), line },
      'not valid JSON',
      { cause },
    );
  }
  if (!isRecord(value)) throw new CorruptEntryError({ line }, 'not a JSON object');
  if (value['format'] === EXPORT_FORMAT) {
    if (!READABLE_VERSIONS.includes(value['version'])) {
      throw new CorruptEntryError({ line }, `unknown export version ${String(value['version'])}`);
    }
    return { kind: 'header', header: value as unknown as ExportHeader };
  }
  if (Object.hasOwn(value, 'checkpoint')) return parseCheckpointLine(value, line);
  const claimed = value['seq'];
  const claimedSeq =
    typeof claimed === 'number' && Number.isSafeInteger(claimed) && claimed >= 1
      ? claimed
      : undefined;
  const raw = value['raw'];
  const bytes =
    typeof raw === 'string' && BASE64.test(raw) ? Buffer.from(raw, 'base64') : undefined;
  // Canonical base64 only: a changed padding bit would otherwise decode to the same bytes.
  if (bytes === undefined || bytes.toString('base64') !== raw) {
    throw new CorruptEntryError({ seq: claimedSeq, line }, '`raw` is missing or not base64');
  }
  let entry: OpLogEntry;
  let logged: LoggedEvent;
  try {
    entry = decodeEntry(new Uint8Array(bytes));
    logged = fromEntry(entry);
  } catch (cause) {
    const reason = cause instanceof CodecError ? cause.message : String(cause);
    throw new CorruptEntryError({ seq: claimedSeq, line }, `raw frame: ${reason}`, { cause });
  }
  const extra = Object.keys(value).filter(
    (k) => k !== 'raw' && !(READABLE_FIELDS as readonly string[]).includes(k),
  );
  if (extra.length > 0) {
    throw new CorruptEntryError({ seq: entry.seq, line }, `unknown fields ${extra.join(', ')}`);
  }
  const readable = entryToJSON(entry);
  for (const field of READABLE_FIELDS) {
    if (!sameJson(value[field], readable[field])) {
      throw new CorruptEntryError(
        { seq: entry.seq, line },
        `readable field '${field}' disagrees with the raw frame`,
      );
    }
  }
  return { kind: 'entry', entry, logged, line };
}
