import CRC32 from 'crc-32';
import { allSegments, shardRecords } from './state.ts';
import { SHARD_COUNT } from './shard.ts';
import type { MetadataState, ObjectRecord } from './types.ts';

const encoder = new TextEncoder();

/** Unsigned CRC32 of the first 8 UTF-8 bytes of `key` (all of it when shorter). */
export function prefixHash(key: string): number {
  const bytes = encoder.encode(key);
  return CRC32.buf(bytes.subarray(0, 8), 0) >>> 0;
}

/** Canonical text of a record's replicated fields: size and replicas, in order. */
function canonicalObject(record: ObjectRecord): string {
  let text = `${record.size}`;
  for (const r of record.replicas) {
    text += `|${JSON.stringify(r.segmentId)},${JSON.stringify(r.nodeId)},${r.offset},${r.length},${r.status === 'complete' ? 'c' : 'p'}`;
  }
  return text;
}

/**
 * Unsigned CRC32 of the canonical encoding of `{size, replicas (segmentId, nodeId, offset,
 * length, status)}`. Leaves out `lastSeq` and leases: two nodes that folded the same log
 * agree on it.
 */
export function objectChecksum(record: ObjectRecord): number {
  return CRC32.str(canonicalObject(record), 0) >>> 0;
}

/**
 * Digest of one shard: CRC32 over its (key, objectChecksum) pairs in sorted key order.
 * Equal for equal shard contents, whatever the history that built them.
 */
export function shardDigest(state: MetadataState, shardId: number): number {
  const records = shardRecords(state, shardId);
  if (records.length === 0) return 0;
  records.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  let crc = 0;
  for (const record of records) {
    crc = CRC32.str(`${JSON.stringify(record.key)}=${objectChecksum(record)};`, crc);
  }
  return crc >>> 0;
}

/**
 * Digest of the whole state: every shard digest in shard order, then the segments (id,
 * node, size, free ranges) in id order. appliedSeq and epoch are not included.
 */
export function stateDigest(state: MetadataState): number {
  let crc = 0;
  for (let s = 0; s < SHARD_COUNT; s++) crc = CRC32.str(`${shardDigest(state, s)},`, crc);
  const segments = [...allSegments(state)].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const seg of segments) {
    let text = `${JSON.stringify(seg.id)},${JSON.stringify(seg.nodeId)},${seg.size}`;
    for (const f of seg.free) text += `[${f.offset},${f.length}]`;
    crc = CRC32.str(`${text};`, crc);
  }
  return crc >>> 0;
}
