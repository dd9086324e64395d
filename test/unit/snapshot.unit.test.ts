import { describe, expect, it } from 'vitest';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import { decodeChunk, encodeChunk } from '../../src/domain/snapshot/jsonChunk.ts';
import { SnapshotBuilder } from '../../src/domain/snapshot/snapshotBuilder.ts';
import {
  snapshotChunks,
  SnapshotCodecError,
  SnapshotError,
  type SnapshotChunk,
} from '../../src/domain/snapshot/chunks.ts';
import { allObjects, allSegments, emptyState, getObject } from '../../src/domain/model/state.ts';
import { shardOf } from '../../src/domain/model/shard.ts';
import type { MetadataEvent, MetadataState, ObjectRecord } from '../../src/domain/model/types.ts';

function build(events: readonly MetadataEvent[]): MetadataState {
  let state = emptyState();
  for (const event of events)
    state = fold(state, { seq: state.appliedSeq + 1, epoch: 1, ts: 0, event });
  return state;
}

function sample(objects = 7): MetadataState {
  const events: MetadataEvent[] = [
    { op: 'MOUNT_SEGMENT', segmentId: 's1', nodeId: 'n1', size: Math.max(1000, objects * 10) },
    { op: 'MOUNT_SEGMENT', segmentId: 's0', nodeId: 'n0', size: Math.max(1000, objects * 10) },
    { op: 'EPOCH', epoch: 7, nodeId: 'n9' },
  ];
  for (let i = 0; i < objects; i++) {
    events.push({
      op: 'PUT_START',
      key: `key-${i}`,
      size: 10,
      replicas: [
        { segmentId: 's0', nodeId: 'n0', offset: i * 10, length: 10, status: 'processing' },
        { segmentId: 's1', nodeId: 'n1', offset: i * 10, length: 10, status: 'processing' },
      ],
    });
    if (i % 2 === 0) events.push({ op: 'PUT_END', key: `key-${i}` });
  }
  return build(events);
}

function rebuild(chunks: Iterable<SnapshotChunk>): MetadataState {
  const builder = new SnapshotBuilder();
  for (const chunk of chunks) builder.add(chunk);
  return builder.finish();
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('snapshotChunks', () => {
  it('cuts segments first, then objects, with index/total, seq, epoch and the digest last', () => {
    const state = sample(7);
    const chunks = [...snapshotChunks(state, 4)];
    expect(chunks).toHaveLength(3); // 2 segments + 7 objects = 9 items
    expect(chunks.map((c) => [c.index, c.total])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    expect(chunks[0]?.segments.map((s) => s.id)).toEqual(['s1', 's0']);
    expect(chunks[0]?.objects).toHaveLength(2);
    expect(chunks.map((c) => c.segments.length + c.objects.length)).toEqual([4, 4, 1]);
    for (const c of chunks)
      expect([c.appliedSeq, c.epoch, c.epochNodeId]).toEqual([state.appliedSeq, 7, 'n9']);
    expect(chunks.map((c) => c.stateDigest)).toEqual([null, null, stateDigest(state)]);
  });

  it('an empty state is one chunk', () => {
    const chunks = [...snapshotChunks(emptyState())];
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatchObject({ index: 0, total: 1, segments: [], objects: [] });
    expect(stateDigest(rebuild(chunks))).toBe(stateDigest(emptyState()));
  });

  it("sends each shard's objects in key order", () => {
    const state = sample(3000); // about 3 objects a shard
    const objects = [...snapshotChunks(state, 500)].flatMap((c) => c.objects);
    expect(objects).toHaveLength(3000);
    const byShard = new Map<number, string[]>();
    for (const o of objects)
      byShard.set(shardOf(o.key), [...(byShard.get(shardOf(o.key)) ?? []), o.key]);
    expect([...byShard.keys()]).toEqual([...byShard.keys()].sort((a, b) => a - b));
    for (const keys of byShard.values()) expect(keys).toEqual([...keys].sort());
  });

  it('refuses a chunk size below 1', () => {
    expect(() => [...snapshotChunks(emptyState(), 0)]).toThrow(RangeError);
  });
});

describe('SnapshotBuilder', () => {
  it('rebuilds an equal, frozen state', () => {
    const state = sample(25);
    const rebuilt = rebuild(snapshotChunks(state, 3));
    expect(stateDigest(rebuilt)).toBe(stateDigest(state));
    expect([...allObjects(rebuilt)]).toEqual([...allObjects(state)]);
    expect([...allSegments(rebuilt)]).toEqual([...allSegments(state)]);
    expect([
      rebuilt.appliedSeq,
      rebuilt.epoch,
      rebuilt.epochNodeId,
      rebuilt.objectCount,
      rebuilt.used,
      rebuilt.capacity,
    ]).toEqual([
      state.appliedSeq,
      state.epoch,
      state.epochNodeId,
      state.objectCount,
      state.used,
      state.capacity,
    ]);
    expect(Object.isFrozen(rebuilt)).toBe(true);
    expect(Object.isFrozen(getObject(rebuilt, 'key-3'))).toBe(true);
    // The rebuilt state folds on like the source.
    const next = {
      seq: state.appliedSeq + 1,
      epoch: 7,
      ts: 0,
      event: { op: 'PUT_END', key: 'key-3' },
    } as const;
    expect(stateDigest(fold(rebuilt, next))).toBe(stateDigest(fold(state, next)));
  });

  it("rebuilds the same state from a shard's objects in another order (checkpoints written before key order)", () => {
    const state = sample(3000);
    const [chunk] = [...snapshotChunks(state, 10_000)];
    if (chunk === undefined) throw new Error('no chunk');
    const byShard = new Map<number, ObjectRecord[]>();
    for (const o of chunk.objects)
      byShard.set(shardOf(o.key), [...(byShard.get(shardOf(o.key)) ?? []), o]);
    const reordered = [...byShard.values()].flatMap((records) => [...records].reverse());
    expect(reordered.map((o) => o.key)).not.toEqual(chunk.objects.map((o) => o.key));
    const rebuilt = rebuild([{ ...chunk, objects: reordered }]);
    expect(stateDigest(rebuilt)).toBe(stateDigest(state));
    for (const o of chunk.objects) expect(getObject(rebuilt, o.key)).toEqual(o);
  });

  it('refuses chunks out of order, from another snapshot, or missing', () => {
    const chunks = [...snapshotChunks(sample(7), 4)];
    const [c0, c1, c2] = chunks as [SnapshotChunk, SnapshotChunk, SnapshotChunk];
    const skip = new SnapshotBuilder();
    skip.add(c0);
    expect(thrown(() => skip.add(c2))).toMatchObject({
      name: 'SnapshotError',
      reason: 'sequence',
      expectedIndex: 1,
    });
    skip.add(c1); // the refused chunk changed nothing
    skip.add(c2);
    expect(stateDigest(skip.finish())).toBe(c2.stateDigest);

    const other = new SnapshotBuilder();
    other.add(c0);
    expect(thrown(() => other.add({ ...c1, appliedSeq: c1.appliedSeq + 1 }))).toBeInstanceOf(
      SnapshotError,
    );

    const short = new SnapshotBuilder();
    short.add(c0);
    short.add(c1);
    expect(thrown(() => short.finish())).toMatchObject({ reason: 'incomplete' });
    expect(thrown(() => new SnapshotBuilder().finish())).toMatchObject({ reason: 'incomplete' });
  });

  it('refuses a wrong digest, a duplicate key and a misplaced digest', () => {
    const chunks = [...snapshotChunks(sample(7), 4)];
    const [c0, c1, c2] = chunks as [SnapshotChunk, SnapshotChunk, SnapshotChunk];
    const wrong = new SnapshotBuilder();
    wrong.add(c0);
    wrong.add(c1);
    wrong.add({ ...c2, stateDigest: ((c2.stateDigest ?? 0) + 1) >>> 0 });
    expect(thrown(() => wrong.finish())).toMatchObject({ name: 'SnapshotError', reason: 'digest' });

    const changed = new SnapshotBuilder();
    changed.add(c0);
    const first = c1.objects[0];
    if (first === undefined) throw new Error('no object');
    changed.add({ ...c1, objects: [{ ...first, size: first.size + 1 }, ...c1.objects.slice(1)] });
    changed.add(c2);
    expect(thrown(() => changed.finish())).toMatchObject({ reason: 'digest' });

    const dup = new SnapshotBuilder();
    dup.add(c0);
    dup.add({ ...c1, objects: [...c1.objects, ...c1.objects.slice(-1)] });
    dup.add(c2);
    expect(thrown(() => dup.finish())).toMatchObject({ reason: 'digest' });

    // Objects come shard by shard: one from a shard already passed is refused, adding nothing.
    const order = new SnapshotBuilder();
    order.add(c0);
    const late = c2.objects[c2.objects.length - 1];
    if (late === undefined) throw new Error('no object');
    expect(thrown(() => order.add({ ...c1, objects: [late, first] }))).toMatchObject({
      reason: 'inconsistent',
    });
    order.add(c1);
    order.add(c2);
    expect(stateDigest(order.finish())).toBe(c2.stateDigest);
    const twice = new SnapshotBuilder();
    expect(
      thrown(() => twice.add({ ...c0, segments: [...c0.segments, ...c0.segments] })),
    ).toMatchObject({ reason: 'inconsistent' });
    expect(thrown(() => new SnapshotBuilder().add({ ...c0, stateDigest: 1 }))).toMatchObject({
      reason: 'inconsistent',
    });
  });
});

describe('encodeChunk / decodeChunk', () => {
  it('round-trips every chunk', () => {
    const chunks = [...snapshotChunks(sample(9), 5)];
    for (const chunk of chunks) expect(decodeChunk(encodeChunk(chunk))).toEqual(chunk);
    expect(stateDigest(rebuild(chunks.map((c) => decodeChunk(encodeChunk(c)))))).toBe(
      chunks.at(-1)?.stateDigest,
    );
  });

  it('rejects truncated, corrupted and garbled bytes with a typed error', () => {
    const bytes = encodeChunk([...snapshotChunks(sample(3), 100)][0] as SnapshotChunk);
    expect(thrown(() => decodeChunk(bytes.subarray(0, 5)))).toMatchObject({
      name: 'SnapshotCodecError',
      reason: 'truncated',
    });
    for (const at of [4, 8, bytes.length - 1, Math.floor(bytes.length / 2)]) {
      const flipped = Uint8Array.from(bytes);
      flipped[at] = (flipped[at] ?? 0) ^ 0x20;
      const error = thrown(() => decodeChunk(flipped));
      expect(error).toBeInstanceOf(SnapshotCodecError);
      expect(error).toMatchObject({ reason: 'checksum' });
    }
    const badMagic = Uint8Array.from(bytes);
    badMagic[0] = 0;
    expect(thrown(() => decodeChunk(badMagic))).toMatchObject({ reason: 'garbled' });
  });
});
