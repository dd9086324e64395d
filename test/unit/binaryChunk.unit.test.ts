import { describe, expect, it } from 'vitest';
import {
  decodeBinaryChunk,
  encodeBinaryChunk,
  isBinaryChunk,
} from '../../src/domain/snapshot/binaryChunk.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { encodeChunk } from '../../src/domain/snapshot/jsonChunk.ts';
import { SnapshotBuilder } from '../../src/domain/snapshot/snapshotBuilder.ts';
import {
  snapshotChunks,
  SnapshotCodecError,
  type SnapshotChunk,
} from '../../src/domain/snapshot/chunks.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import { foldHistory } from '../fixtures/stateHistory.ts';

const sampleState = foldHistory([
  { command: { type: 'putStart', key: 'alpha', size: 100, replicaNum: 2 }, client: 0 },
  { command: { type: 'putStart', key: 'ключ', size: 7, replicaNum: 1 }, client: 1 },
  { command: { type: 'putEnd', key: 'alpha' }, client: 0 },
  {
    command: { type: 'putStart', key: '🔑'.repeat(40), size: 2 ** 30, replicaNum: 2 },
    client: undefined,
  },
]);

function reason(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof SnapshotCodecError) return err.reason;
    throw err;
  }
  return undefined;
}

describe('binary chunk codec', () => {
  it('round-trips every chunk of a state with segments, sessions and objects', () => {
    const chunks = [...snapshotChunks(sampleState, 3)];
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.some((c) => c.sessions.length > 0)).toBe(true);
    for (const chunk of chunks) {
      const bytes = encodeBinaryChunk(chunk);
      expect(isBinaryChunk(bytes)).toBe(true);
      expect(decodeBinaryChunk(bytes)).toEqual(chunk);
    }
  });

  it('rebuilds a state with the same digest', () => {
    const builder = new SnapshotBuilder();
    for (const chunk of snapshotChunks(sampleState, 2))
      builder.add(decodeBinaryChunk(encodeBinaryChunk(chunk)));
    expect(stateDigest(builder.finish())).toBe(stateDigest(sampleState));
  });

  it('keeps integers up to 2^53 - 1 and strings longer than the fast path', () => {
    const chunk: SnapshotChunk = {
      ...([...snapshotChunks(emptyState())][0] as SnapshotChunk),
      appliedSeq: Number.MAX_SAFE_INTEGER,
      epoch: 2 ** 32 + 1,
      epochNodeId: 'n'.repeat(20_000),
      stateDigest: 0xffffffff,
      objects: [
        {
          key: 'k'.repeat(1024),
          size: 2 ** 40,
          lastSeq: 2 ** 31,
          replicas: [
            { segmentId: 's', nodeId: 'n', offset: 2 ** 50 - 1, length: 1, status: 'complete' },
          ],
        },
      ],
    };
    expect(decodeBinaryChunk(encodeBinaryChunk(chunk))).toEqual(chunk);
  });

  it('rejects every single-byte change', () => {
    const bytes = encodeBinaryChunk([...snapshotChunks(sampleState, 3)][1] as SnapshotChunk);
    const accepted: string[] = [];
    for (let at = 0; at < bytes.length; at++) {
      for (let value = 0; value < 256; value++) {
        if (value === bytes[at]) continue;
        const changed = bytes.slice();
        changed[at] = value;
        if (reason(() => decodeBinaryChunk(changed)) === undefined) accepted.push(`${at}=${value}`);
      }
    }
    expect(accepted).toEqual([]);
  });

  it('rejects truncation, trailing bytes and the JSON encoding', () => {
    const chunk = [...snapshotChunks(sampleState, 100)][0] as SnapshotChunk;
    const bytes = encodeBinaryChunk(chunk);
    for (let length = 0; length < bytes.length; length++)
      expect(reason(() => decodeBinaryChunk(bytes.subarray(0, length)))).toBeDefined();
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(reason(() => decodeBinaryChunk(longer))).toBe('checksum');
    expect(reason(() => decodeBinaryChunk(encodeChunk(chunk)))).toBe('garbled');
  });

  it('refuses to encode a field that is not a safe non-negative integer', () => {
    const chunk = { ...([...snapshotChunks(emptyState())][0] as SnapshotChunk), appliedSeq: -1 };
    expect(() => encodeBinaryChunk(chunk)).toThrow(RangeError);
  });
});
