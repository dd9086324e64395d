import { describe, expect, it } from 'vitest';
import {
  checkCheckpoint,
  checkpointFrames,
  CheckpointError,
  CheckpointReader,
  readCheckpoint,
} from '../../src/domain/snapshot/checkpoint.ts';
import { encodeBinaryChunk } from '../../src/domain/snapshot/binaryChunk.ts';
import { snapshotChunks } from '../../src/domain/snapshot/chunks.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { allSessions } from '../../src/domain/model/state.ts';
import { foldHistory } from '../fixtures/stateHistory.ts';

const state = foldHistory(
  Array.from({ length: 25 }, (_, i) => ({
    command: { type: 'putStart' as const, key: `k${i}`, size: 10 + i, replicaNum: 2 },
    client: i % 2,
  })),
);
const claim = { appliedSeq: state.appliedSeq, stateDigest: stateDigest(state) };

function concat(frames: Iterable<Uint8Array>): Uint8Array {
  const all = [...frames];
  const out = new Uint8Array(all.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of all) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

function reason(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof CheckpointError) return err.reason;
    throw err;
  }
  return undefined;
}

describe('checkpoint bytes', () => {
  it('rebuild the state, sessions included, from pieces of any size', () => {
    const bytes = concat(checkpointFrames(state, 4));
    for (const size of [1, 7, 100, bytes.length]) {
      const reader = new CheckpointReader(claim);
      for (let at = 0; at < bytes.length; at += size) reader.add(bytes.subarray(at, at + size));
      const back = reader.finish();
      expect(stateDigest(back)).toBe(claim.stateDigest);
      expect([...allSessions(back)]).toEqual([...allSessions(state)]);
      expect(reader.bytes).toBe(bytes.length);
    }
  });

  it('report a changed byte as corrupt, a cut as truncated, another seq or digest as mismatch', () => {
    const bytes = concat(checkpointFrames(state, 4));
    const changed = bytes.slice();
    changed[bytes.length >> 1] = (changed[bytes.length >> 1] as number) ^ 1;
    expect(reason(() => readCheckpoint([changed], claim))).toBe('corrupt');
    expect(reason(() => readCheckpoint([bytes.subarray(0, bytes.length - 3)], claim))).toBe(
      'truncated',
    );
    const frames = [...checkpointFrames(state, 4)];
    expect(reason(() => readCheckpoint(frames.slice(0, -1), claim))).toBe('truncated');
    expect(reason(() => readCheckpoint(frames, { ...claim, appliedSeq: 1 }))).toBe('mismatch');
    expect(reason(() => readCheckpoint(frames, { ...claim, stateDigest: 1 }))).toBe('mismatch');
    expect(reason(() => readCheckpoint([...frames.slice(1), frames[0]!], claim))).toBe('corrupt');
  });

  it("are checked without building the state (a writer's read-back) exactly as a rebuild checks them", () => {
    const frames = [...checkpointFrames(state, 4)];
    const bytes = concat(frames);
    const changed = bytes.slice();
    changed[bytes.length >> 1] = (changed[bytes.length >> 1] as number) ^ 1;
    // Chunks that each decode (their CRCs are right) but hold another state than the digest
    // the last one carries: only the digest of the records read can tell.
    const chunks = [...snapshotChunks(state, 4)];
    const edited = chunks.map((chunk, i) =>
      i !== 2
        ? chunk
        : {
            ...chunk,
            objects: chunk.objects.map((o, j) => (j === 0 ? { ...o, size: o.size + 1 } : o)),
          },
    );
    const framed = edited.map((chunk) => {
      const body = encodeBinaryChunk(chunk);
      const frame = new Uint8Array(4 + body.length);
      new DataView(frame.buffer).setUint32(0, body.length);
      frame.set(body, 4);
      return frame;
    });
    const cases: [string, Uint8Array[], typeof claim][] = [
      ['whole', frames, claim],
      ['one byte changed', [changed], claim],
      ['cut in a chunk', [bytes.subarray(0, bytes.length - 3)], claim],
      ['last chunk missing', frames.slice(0, -1), claim],
      ['another seq', frames, { ...claim, appliedSeq: 1 }],
      ['another digest', frames, { ...claim, stateDigest: 1 }],
      ['out of order', [...frames.slice(1), frames[0]!], claim],
      ['a record changed, CRCs right', framed, claim],
    ];
    const seen = cases.map(([what, pieces, c]) => [
      what,
      reason(() => readCheckpoint(pieces, c)),
      reason(() => checkCheckpoint(pieces, c)),
    ]);
    expect(seen).toEqual(cases.map(([what], i) => [what, seen[i]![1], seen[i]![1]]));
    expect(seen.map(([, read]) => read)).toEqual([
      undefined,
      'corrupt',
      'truncated',
      'truncated',
      'mismatch',
      'mismatch',
      'corrupt',
      'corrupt',
    ]);
  });

  it('checked without building, give no state to build', () => {
    const reader = new CheckpointReader(claim, { keep: false });
    for (const frame of checkpointFrames(state, 4)) reader.add(frame);
    expect(() => reader.check()).not.toThrow();
    expect(() => reader.finish()).toThrow(TypeError);
  });
});
