import CRC32 from 'crc-32';
import { CrcText } from './crc32Text.ts';
import { allSegments, allSessions, shardRecords } from '../model/state.ts';
import { SHARD_COUNT } from '../model/shard.ts';
import type {
  MetadataState,
  ObjectRecord,
  Replica,
  Segment,
  SessionRecord,
  ShardSummary,
} from '../model/types.ts';

const encoder = new TextEncoder();

const PIPE = 124;
const COMMA = 44;
const EQUALS = 61;
const SEMICOLON = 59;

/** Unsigned CRC32 of the first 8 UTF-8 bytes of `key` (all of it when shorter). */
export function prefixHash(key: string): number {
  const bytes = encoder.encode(key);
  return CRC32.buf(bytes.subarray(0, 8), 0) >>> 0;
}

/**
 * Unsigned CRC32 of the canonical text of `{size, replicas (segmentId, nodeId, offset,
 * length, status)}`: `${size}` then, per replica in order,
 * `|${JSON.stringify(segmentId)},${JSON.stringify(nodeId)},${offset},${length},${c|p}`
 * (c for complete, p for processing). Leaves out `lastSeq` and leases: two nodes that folded
 * the same log agree on it. Hashed piece by piece (see crc32Text.ts), the text is never built.
 */
export function objectChecksum(record: ObjectRecord): number {
  return addReplicas(recordText.start().number(record.size), record.replicas).done();
}

/** One text per nesting level (a CrcText is not re-entrant): a record's, a digest's, a hash's. */
const recordText = new CrcText();
const digestText = new CrcText();
const hashText = new CrcText();

function addReplicas(text: CrcText, replicas: readonly Replica[]): CrcText {
  for (let i = 0; i < replicas.length; i++) {
    const r = replicas[i] as Replica;
    text.char(PIPE).jsonString(r.segmentId).char(COMMA).jsonString(r.nodeId);
    text.char(COMMA).number(r.offset).char(COMMA).number(r.length).char(COMMA);
    text.char(r.status === 'complete' ? 99 /* c */ : 112 /* p */);
  }
  return text;
}

/**
 * The hash of one record in a shard's verification summary: CRC32 of its key's UTF-8 bytes
 * seeded with its {@link objectChecksum}.
 */
export function recordVerifyHash(record: ObjectRecord): number {
  return hashText.start(objectChecksum(record)).string(record.key).done();
}

/**
 * The verification digest of a shard with this summary: CRC32 of
 * `${keyCount},${sum},${xor}`; 0 for an empty shard. Independent of the order of the records.
 */
export function summaryDigest(summary: ShardSummary): number {
  if (summary.keyCount === 0) return 0;
  return CRC32.str(`${summary.keyCount},${summary.sum},${summary.xor}`, 0) >>> 0;
}

/** The verification summary of a shard holding `records`, counted as changed at `changedSeq`. */
export function summariseRecords(
  records: Iterable<ObjectRecord>,
  changedSeq: number,
): ShardSummary {
  let keyCount = 0;
  let sum = 0;
  let xor = 0;
  for (const record of records) {
    const hash = recordVerifyHash(record);
    keyCount++;
    sum = (sum + hash) >>> 0;
    xor = (xor ^ hash) >>> 0;
  }
  return Object.freeze({ keyCount, sum, xor, changedSeq });
}

/**
 * Digest of one shard: CRC32 over `${JSON.stringify(key)}=${objectChecksum(record)};` for its
 * records in sorted key order. Equal for equal shard contents, whatever the history that built
 * them.
 */
export function shardDigest(state: MetadataState, shardId: number): number {
  return recordsDigest(shardRecords(state, shardId));
}

/** {@link shardDigest} of a shard holding `records` (sorted in place). */
export function recordsDigest(records: ObjectRecord[]): number {
  return digestAndSummarise(records, 0).digest;
}

/**
 * {@link recordsDigest} and {@link summariseRecords} of the same records (sorted in place),
 * each record's checksum computed once.
 */
export function digestAndSummarise(
  records: ObjectRecord[],
  changedSeq: number,
): { digest: number; summary: ShardSummary } {
  if (records.length === 0)
    return { digest: 0, summary: Object.freeze({ keyCount: 0, sum: 0, xor: 0, changedSeq }) };
  records.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const digest = digestText.start();
  let sum = 0;
  let xor = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as ObjectRecord;
    const checksum = objectChecksum(record);
    digest.jsonString(record.key).char(EQUALS).number(checksum).char(SEMICOLON);
    const hash = hashText.start(checksum).string(record.key).done();
    sum = (sum + hash) >>> 0;
    xor = (xor ^ hash) >>> 0;
  }
  const summary = Object.freeze({ keyCount: records.length, sum, xor, changedSeq });
  return { digest: digest.done(), summary };
}

/**
 * A digest as people see it (`/status`, `understudy replay`, logs): 8 lowercase hex digits.
 * One format everywhere, so digests from different places compare as text.
 */
export function digestHex(digest: number): string {
  return (digest >>> 0).toString(16).padStart(8, '0');
}

/**
 * Unsigned CRC32 of the canonical text of a session: `${JSON.stringify(sessionId)}|
 * ${oldestPending}|${lastSeq}|${lastTs}` then, per result in order,
 * `;${requestNo},${seq},${op},${JSON.stringify(key)}` and its placement as in
 * {@link objectChecksum}. Two nodes that folded the same log agree on it.
 */
export function sessionChecksum(session: SessionRecord): number {
  const text = recordText.start().jsonString(session.sessionId);
  text.char(PIPE).number(session.oldestPending);
  text.char(PIPE).number(session.lastSeq);
  text.char(PIPE).number(session.lastTs);
  for (const r of session.results) {
    text.char(SEMICOLON).number(r.requestNo).char(COMMA).number(r.seq);
    text.char(COMMA).string(r.op).char(COMMA).jsonString(r.key);
    if (r.replicas !== undefined) addReplicas(text, r.replicas);
  }
  return text.done();
}

/**
 * Digest of a session table: CRC32 over `${sessionChecksum};` of its sessions in id order; 0
 * for an empty table.
 */
export function sessionsDigest(sessions: Iterable<SessionRecord>): number {
  return combineSessionChecksums(sortedSessions(sessions).map(sessionChecksum));
}

/** The sessions in id order, as {@link sessionsDigest} hashes them. */
export function sortedSessions(sessions: Iterable<SessionRecord>): SessionRecord[] {
  return [...sessions].sort((a, b) =>
    a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0,
  );
}

/**
 * {@link sessionsDigest} from the {@link sessionChecksum}s of the sessions in id order: for a
 * caller that computed them piece by piece.
 */
export function combineSessionChecksums(checksums: readonly number[]): number {
  if (checksums.length === 0) return 0;
  const text = digestText.start();
  for (const checksum of checksums) text.number(checksum).char(SEMICOLON);
  return text.done();
}

/**
 * Digest of the whole state: every shard digest in shard order, then the segments (id,
 * node, size, base when not 0, free ranges) in id order, then (when there is one) the session table's digest.
 * appliedSeq and epoch are not included.
 */
export function stateDigest(state: MetadataState): number {
  const shardDigests: number[] = [];
  for (let s = 0; s < SHARD_COUNT; s++) shardDigests.push(shardDigest(state, s));
  return combineDigest(shardDigests, allSegments(state), sessionsDigest(allSessions(state)));
}

/**
 * {@link stateDigest} from the shard digests (all {@link SHARD_COUNT}, in shard order), the
 * segments and the session table's digest: for a caller that computed the shard digests piece
 * by piece.
 */
export function combineDigest(
  shardDigests: readonly number[],
  segments: Iterable<Segment>,
  sessionTableDigest = 0,
): number {
  if (shardDigests.length !== SHARD_COUNT)
    throw new RangeError(`${shardDigests.length} shard digests, not ${SHARD_COUNT}`);
  let crc = 0;
  for (const digest of shardDigests) crc = CRC32.str(`${digest},`, crc);
  const sorted = [...segments].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const seg of sorted) {
    let text = `${JSON.stringify(seg.id)},${JSON.stringify(seg.nodeId)},${seg.size}`;
    if (seg.base !== undefined && seg.base > 0) text += `@${seg.base}`;
    for (const f of seg.free) text += `[${f.offset},${f.length}]`;
    crc = CRC32.str(`${text};`, crc);
  }
  if (sessionTableDigest !== 0) crc = CRC32.str(`sessions=${sessionTableDigest};`, crc);
  return crc >>> 0;
}
