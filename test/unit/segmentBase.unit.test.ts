import { describe, expect, it } from 'vitest';
import { decide } from '../../src/domain/decide/decide.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import { FoldError } from '../../src/domain/fold/foldError.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { decodeEvent, encodeEvent } from '../../src/domain/log/eventCodec.ts';
import { emptyState, getObject, getSegment } from '../../src/domain/model/state.ts';
import type { MetadataState } from '../../src/domain/model/types.ts';
import { segmentSlice } from '../../src/domain/model/segmentSlices.ts';
import { decodeBinaryChunk, encodeBinaryChunk } from '../../src/domain/snapshot/binaryChunk.ts';
import { snapshotChunks, type SnapshotChunk } from '../../src/domain/snapshot/chunks.ts';
import { decodeChunk, encodeChunk } from '../../src/domain/snapshot/jsonChunk.ts';
import { SnapshotBuilder } from '../../src/domain/snapshot/snapshotBuilder.ts';
import { applyCorrections } from '../../src/domain/verify/repair.ts';
import { noReadLeases, runCommands } from '../fixtures/runCommands.ts';

// A group of a cluster of several mounts its own slice [base, base + size) of every segment
// (segmentSlices.ts): the MOUNT_SEGMENT event carries the base; a mount at 0 is the mount of
// before, byte for byte.

const SEGMENT = 1000;

/** Group `group` of `groups`: both storage nodes' segments mounted as that group's slices. */
function groupState(group: number, groups: number): MetadataState {
  return runCommands(
    emptyState(),
    ['a', 'b'].map((node) => {
      const slice = segmentSlice(SEGMENT, group, groups);
      return { type: 'mountSegment', segmentId: `${node}-0`, nodeId: node, ...slice } as const;
    }),
  );
}

describe('a segment mounted from a base', () => {
  it('logs the base only when not 0: a mount at 0 encodes as before slices', () => {
    const atZero = decide(
      emptyState(),
      { type: 'mountSegment', segmentId: 's', nodeId: 'n', size: 10, base: 0 },
      noReadLeases,
    );
    expect(atZero).toEqual({
      ok: true,
      event: { op: 'MOUNT_SEGMENT', segmentId: 's', nodeId: 'n', size: 10 },
    });
    const bytes = new TextDecoder().decode(
      encodeEvent({ op: 'MOUNT_SEGMENT', segmentId: 's', nodeId: 'n', size: 10 }),
    );
    expect(bytes).toBe('{"op":"MOUNT_SEGMENT","segmentId":"s","nodeId":"n","size":10}');
    const sliced = {
      op: 'MOUNT_SEGMENT',
      segmentId: 's',
      nodeId: 'n',
      size: 10,
      base: 20,
    } as const;
    expect(decodeEvent(encodeEvent(sliced))).toEqual(sliced);
  });

  it('places replicas inside the slice only, and refuses once the slice is full', () => {
    const g1 = groupState(1, 4); // bytes [250, 500) of each segment
    const state = runCommands(g1, [
      { type: 'putStart', key: 'k1', size: 200, replicaNum: 2 },
      { type: 'putStart', key: 'k2', size: 50, replicaNum: 2 },
    ]);
    const offsets = [getObject(state, 'k1'), getObject(state, 'k2')].flatMap((o) =>
      (o?.replicas ?? []).map((r) => [r.offset, r.offset + r.length]),
    );
    expect(offsets).toEqual([
      [250, 450],
      [250, 450],
      [450, 500],
      [450, 500],
    ]);
    const full = decide(
      state,
      { type: 'putStart', key: 'k3', size: 1, replicaNum: 1 },
      noReadLeases,
    );
    // No node has a free byte left in this group's slices (the other groups' are not its own).
    expect(full.ok ? 'placed' : full.error.code).toBe('NOT_ENOUGH_NODES');
    expect(state.capacity).toBe(500);
    expect(state.used).toBe(500);
    // Removing frees the range back into the slice.
    const after = runCommands(state, [
      { type: 'putRevoke', key: 'k1' },
      { type: 'putStart', key: 'k4', size: 200, replicaNum: 2 },
    ]);
    expect(getObject(after, 'k4')?.replicas.map((r) => r.offset)).toEqual([250, 250]);
  });

  it('the fold refuses a replica outside the slice', () => {
    const g0 = groupState(0, 2); // [0, 500)
    const outside = {
      op: 'PUT_START',
      key: 'x',
      size: 10,
      replicas: [{ segmentId: 'a-0', nodeId: 'a', offset: 500, length: 10, status: 'processing' }],
    } as const;
    expect(() => fold(g0, { seq: 3, epoch: 1, ts: 0, event: outside })).toThrow(FoldError);
  });

  it('refuses a base that would end the segment past the size limit', () => {
    const d = decide(
      emptyState(),
      { type: 'mountSegment', segmentId: 's', nodeId: 'n', size: 2 ** 50, base: 1 },
      noReadLeases,
    );
    expect(d.ok ? 'accepted' : [d.error.code, d.error.message]).toEqual([
      'INVALID_ARGUMENT',
      expect.stringContaining('base'),
    ]);
  });

  it('survives both chunk encodings, and the digest tells slices apart', () => {
    const state = runCommands(groupState(2, 3), [
      { type: 'putStart', key: 'k', size: 100, replicaNum: 2 },
    ]);
    for (const codec of [
      (c: SnapshotChunk) => decodeBinaryChunk(encodeBinaryChunk(c)),
      (c: SnapshotChunk) => decodeChunk(encodeChunk(c)),
    ]) {
      const builder = new SnapshotBuilder();
      for (const chunk of snapshotChunks(state, 1)) builder.add(codec(chunk));
      const rebuilt = builder.finish();
      expect(stateDigest(rebuilt)).toBe(stateDigest(state));
      expect(getSegment(rebuilt, 'a-0')).toEqual(getSegment(state, 'a-0'));
      // The rebuilt state goes on allocating inside the slice.
      const next = runCommands(rebuilt, [{ type: 'putStart', key: 'j', size: 5, replicaNum: 1 }]);
      expect(getObject(next, 'j')?.replicas[0]?.offset).toBe(666 + 100);
    }
    expect(stateDigest(groupState(0, 2))).not.toBe(stateDigest(groupState(1, 2)));
  });

  it('a binary chunk with a base refuses every single-byte change', () => {
    const chunk = [...snapshotChunks(groupState(1, 2), 100)][0] as SnapshotChunk;
    const bytes = encodeBinaryChunk(chunk);
    expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe('USB2');
    const accepted: string[] = [];
    for (let at = 0; at < bytes.length; at++) {
      for (let value = 0; value < 256; value++) {
        if (value === bytes[at]) continue;
        const changed = bytes.slice();
        changed[at] = value;
        try {
          decodeBinaryChunk(changed);
          accepted.push(`${at}=${value}`);
        } catch {
          // refused, as it must be
        }
      }
    }
    expect(accepted).toEqual([]);
  });

  it('a repair recomputes a sliced segment within its slice (regression)', () => {
    // Group 1 of 2: bytes [500, 1000). The standby lost record k; the primary's repair gives
    // it back, and the segment's free list is recomputed from the records.
    const primary = runCommands(groupState(1, 2), [
      { type: 'putStart', key: 'k', size: 100, replicaNum: 2 },
      { type: 'putStart', key: 'j', size: 50, replicaNum: 1 },
    ]);
    const record = getObject(primary, 'k');
    const standby = applyCorrections(primary, [{ key: 'k', record: null }]);
    expect(getSegment(standby, 'a-0')?.free).toEqual([
      { offset: 500, length: 100 },
      { offset: 650, length: 350 },
    ]);
    const repaired = applyCorrections(standby, [{ key: 'k', record: record ?? null }]);
    expect(stateDigest(repaired)).toBe(stateDigest(primary));
    expect(getSegment(repaired, 'a-0')).toEqual(getSegment(primary, 'a-0'));
  });
});
