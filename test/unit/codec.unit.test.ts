import CRC32 from 'crc-32';
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  decodeBatch,
  decodeEntry,
  encodeBatch,
  encodeEntry,
} from '../../src/domain/log/codec.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { entryToJSON, fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../src/domain/model/types.ts';

const put: LoggedEvent = {
  seq: 7,
  epoch: 3,
  ts: 1_700_000_000_000,
  event: {
    op: 'PUT_START',
    key: 'clé/κλειδί/🔑',
    size: 4096,
    replicas: [{ segmentId: 's1', nodeId: 'n1', offset: 8192, length: 4096, status: 'processing' }],
  },
};

function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CodecError);
    return e as CodecError;
  }
  throw new Error('expected a CodecError');
}

/** The canonical payload as JSON.stringify writes it: the event's fields in its type's order. */
function canonicalJson(logged: LoggedEvent): string {
  const e = logged.event;
  const fields: Record<string, unknown> = (() => {
    switch (e.op) {
      case 'MOUNT_SEGMENT':
        return { op: e.op, segmentId: e.segmentId, nodeId: e.nodeId, size: e.size };
      case 'UNMOUNT_SEGMENT':
        return { op: e.op, segmentId: e.segmentId };
      case 'PUT_START':
        return {
          op: e.op,
          key: e.key,
          size: e.size,
          replicas: e.replicas.map((r) => ({
            segmentId: r.segmentId,
            nodeId: r.nodeId,
            offset: r.offset,
            length: r.length,
            status: r.status,
          })),
        };
      case 'PUT_END':
      case 'PUT_REVOKE':
      case 'REMOVE':
        return { op: e.op, key: e.key };
      case 'EVICTION':
        return { op: e.op, keys: e.keys };
      case 'EPOCH':
        return { op: e.op, epoch: e.epoch, nodeId: e.nodeId };
    }
  })();
  const o = logged.origin;
  return JSON.stringify(
    o === undefined ? fields : { ...fields, origin: [o.sessionId, o.requestNo, o.oldestPending] },
  );
}

describe('eventCodec', () => {
  it('writes the canonical JSON payload, and the frame the generic encoder writes', () => {
    const origin = { sessionId: 'ab'.repeat(16), requestNo: 12, oldestPending: 9 };
    const events: LoggedEvent[] = [
      put,
      { ...put, origin },
      { ...put, event: { ...put.event, key: 'tab\t"quote"\\ \u0001' } as LoggedEvent['event'] },
      { ...put, event: { op: 'MOUNT_SEGMENT', segmentId: 's-ä', nodeId: 'n', size: 2 ** 50 } },
      { ...put, event: { op: 'UNMOUNT_SEGMENT', segmentId: 's1' }, origin },
      { ...put, event: { op: 'PUT_END', key: 'k' }, origin },
      { ...put, event: { op: 'PUT_REVOKE', key: 'k' } },
      { ...put, event: { op: 'REMOVE', key: '🔑' } },
      { ...put, event: { op: 'EVICTION', keys: ['a', 'b"', 'ç'] } },
      { ...put, event: { op: 'EPOCH', epoch: 4, nodeId: 'n2' } },
    ];
    for (const logged of events) {
      const entry = toEntry(logged);
      expect(new TextDecoder().decode(entry.payload)).toBe(canonicalJson(logged));
      // A plain copy is not one toEntry framed: the generic (checking) encoder writes its frame.
      expect(encodeEntry(entry)).toEqual(encodeEntry({ ...entry, payload: entry.payload.slice() }));
      expect(fromEntry(decodeEntry(encodeEntry(entry)))).toEqual(logged);
    }
  });

  it('fills op, key, payload, checksum, prefixHash and round-trips', () => {
    const entry = toEntry(put);
    expect(entry.op).toBe('PUT_START');
    expect(entry.key).toBe('clé/κλειδί/🔑');
    expect(fromEntry(entry)).toEqual(put);
    const epoch = toEntry({
      seq: 1,
      epoch: 9,
      ts: 0,
      event: { op: 'EPOCH', epoch: 9, nodeId: 'n' },
    });
    expect(epoch.key).toBe('');
    const mount = toEntry({
      seq: 2,
      epoch: 9,
      ts: 0,
      event: { op: 'MOUNT_SEGMENT', segmentId: 'sg', nodeId: 'n', size: 5 },
    });
    expect(mount.key).toBe('sg');
  });
  it('fromEntry refuses a bad checksum, a wrong op or key, and a bad payload', () => {
    const entry = toEntry(put);
    expect(
      codecError(() => fromEntry({ ...entry, checksum: (entry.checksum + 1) >>> 0 })).reason,
    ).toBe('checksum');
    expect(codecError(() => fromEntry({ ...entry, op: 'PUT_END' })).reason).toBe('garbled');
    const other = toEntry({ ...put, event: { op: 'PUT_END', key: 'other' } });
    expect(
      codecError(() =>
        fromEntry({ ...other, op: 'PUT_END', key: 'clé/κλειδί/🔑', prefixHash: entry.prefixHash }),
      ).reason,
    ).toBe('garbled');
    const junk = toEntry({ seq: 1, epoch: 1, ts: 0, event: { op: 'PUT_END', key: 'k' } });
    for (const text of [
      '{"op":"PUT_END","key":""}',
      '{"op":"PUT_END","key":"k","x":1}',
      'nope',
      '[]',
    ]) {
      const payload = new TextEncoder().encode(text);
      const e = codecError(() => fromEntry({ ...junk, payload, checksum: crcOf(payload) }));
      expect(e.reason).toBe('garbled');
    }
  });
  it('entryToJSON is readable', () => {
    const json = entryToJSON(toEntry(put));
    expect(json).toMatchObject({ seq: 7, op: 'PUT_START', event: put.event });
    expect(JSON.parse(JSON.stringify(json))).toMatchObject({ time: '2023-11-14T22:13:20.000Z' });
  });
});

function crcOf(bytes: Uint8Array): number {
  return CRC32.buf(bytes, 0) >>> 0;
}

describe('codec', () => {
  const entries: OpLogEntry[] = [
    put,
    { ...put, seq: 8, event: { op: 'PUT_END', key: 'k' } as const },
  ].map(toEntry);

  it('round-trips an entry and a batch', () => {
    const first = entries[0]!;
    expect(decodeEntry(encodeEntry(first))).toEqual(first);
    expect(decodeBatch(encodeBatch(entries))).toEqual(entries);
    expect(decodeBatch(encodeBatch([]))).toEqual([]);
  });
  it('rejects every single-byte change of an entry', () => {
    const bytes = encodeEntry(entries[0]!);
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] = (bad[i]! + 1 + (i % 255)) & 0xff;
      codecError(() => decodeEntry(bad));
    }
  });
  it('rejects truncation, extension and non-contiguous batches', () => {
    const bytes = encodeEntry(entries[0]!);
    expect(codecError(() => decodeEntry(bytes.subarray(0, 10))).reason).toBe('truncated');
    codecError(() => decodeEntry(bytes.subarray(0, bytes.length - 1)));
    codecError(() => decodeEntry(new Uint8Array([...bytes, 0])));
    const gap = [entries[0]!, { ...entries[1]!, seq: 10 }];
    expect(codecError(() => encodeBatch(gap)).reason).toBe('garbled');
  });
  it('refuses to encode an inconsistent entry', () => {
    expect(codecError(() => encodeEntry({ ...entries[0]!, checksum: 1 })).reason).toBe('checksum');
    expect(codecError(() => encodeEntry({ ...entries[0]!, prefixHash: 1 })).reason).toBe(
      'checksum',
    );
    expect(codecError(() => encodeEntry({ ...entries[0]!, seq: 0 })).reason).toBe('garbled');
  });
});
