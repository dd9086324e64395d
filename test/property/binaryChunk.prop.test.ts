import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBinaryChunk, encodeBinaryChunk } from '../../src/domain/snapshot/binaryChunk.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { SnapshotBuilder } from '../../src/domain/snapshot/snapshotBuilder.ts';
import {
  snapshotChunks,
  SnapshotCodecError,
  type SnapshotChunk,
} from '../../src/domain/snapshot/chunks.ts';
import { allObjects, allSessions } from '../../src/domain/model/state.ts';
import { foldHistory, historyArb } from '../fixtures/stateHistory.ts';
import { propRuns } from './runs.ts';

describe('binary chunk codec properties', () => {
  it('round trip: decode(encode(chunk)) equals the chunk, and the rebuilt state has the same digest', () => {
    fc.assert(
      fc.property(historyArb(25), fc.integer({ min: 1, max: 7 }), (steps, chunkSize) => {
        const state = foldHistory(steps);
        const builder = new SnapshotBuilder();
        for (const chunk of snapshotChunks(state, chunkSize)) {
          const decoded = decodeBinaryChunk(encodeBinaryChunk(chunk));
          expect(decoded).toEqual(chunk);
          builder.add(decoded);
        }
        const rebuilt = builder.finish();
        expect(stateDigest(rebuilt)).toBe(stateDigest(state));
        expect([...allSessions(rebuilt)]).toEqual([...allSessions(state)]);
        expect([...allObjects(rebuilt)]).toEqual([...allObjects(state)]);
      }),
      { numRuns: propRuns() },
    );
  });

  it('any single-byte change of an encoded chunk is rejected', () => {
    fc.assert(
      fc.property(
        historyArb(20),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (steps, position, delta) => {
          const chunk = [...snapshotChunks(foldHistory(steps), 50)][0] as SnapshotChunk;
          const bytes = encodeBinaryChunk(chunk);
          const at = position % bytes.length;
          const changed = bytes.slice();
          changed[at] = ((changed[at] as number) + delta) & 0xff;
          expect(() => decodeBinaryChunk(changed)).toThrow(SnapshotCodecError);
        },
      ),
      { numRuns: propRuns() },
    );
  });
});
