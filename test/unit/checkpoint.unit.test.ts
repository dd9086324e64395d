import { describe, expect, it } from 'vitest';
import {
  checkpointFrames,
  CheckpointError,
  CheckpointReader,
  readCheckpoint,
} from '../../src/domain/snapshot/checkpoint.ts';
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
});
