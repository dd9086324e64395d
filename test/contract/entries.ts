// Small OpLog entries for contract tests, independent of the domain codec.
import CRC32 from 'crc-32';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';

const encoder = new TextEncoder();

/** A valid entry with seq `seq`: a PUT_START of key `k<seq>` with a small payload. */
export function testEntry(seq: number, epoch = 1): OpLogEntry {
  const key = `k${seq}`;
  const payload = encoder.encode(JSON.stringify({ seq, note: 'contract' }));
  return {
    seq,
    epoch,
    ts: 1_700_000_000_000 + seq,
    op: 'PUT_START',
    key,
    payload,
    checksum: CRC32.buf(payload) >>> 0,
    prefixHash: CRC32.buf(encoder.encode(key).subarray(0, 8)) >>> 0,
  };
}

/** Entries `from..to` inclusive. */
export function testEntries(from: number, to: number, epoch = 1): OpLogEntry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => testEntry(from + i, epoch));
}
