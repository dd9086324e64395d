import fc from 'fast-check';
import { produce } from 'immer';
import { describe, expect, it } from 'vitest';
import { shardDigest, stateDigest } from '../../src/domain/log/checksum.ts';
import { decide, type DecideContext } from '../../src/domain/decide/decide.ts';
import { decideEviction } from '../../src/domain/decide/eviction.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import { bucketOf, keyHash, SHARD_COUNT, shardOf } from '../../src/domain/model/shard.ts';
import { decodeChunk, encodeChunk } from '../../src/domain/snapshot/jsonChunk.ts';
import { SnapshotBuilder } from '../../src/domain/snapshot/snapshotBuilder.ts';
import { snapshotChunks } from '../../src/domain/snapshot/chunks.ts';
import { allObjects, allSegments, emptyState, getObject } from '../../src/domain/model/state.ts';
import type {
  Command,
  LoggedEvent,
  MetadataState,
  ObjectRecord,
} from '../../src/domain/model/types.ts';
import { answerVerify } from '../../src/domain/verify/answer.ts';
import { applyCorrections } from '../../src/domain/verify/repair.ts';
import { buildVerifyRequest } from '../../src/domain/verify/sampling.ts';
import { propRuns } from './runs.ts';
import { expectSummariesOfRecords } from './shardSummaries.ts';

/** A step of a generated history: a client command, an eviction round, or a new primary. */
type Step =
  | { readonly kind: 'command'; readonly command: Command }
  | { readonly kind: 'evict'; readonly highWater: number; readonly lowWater: number }
  | { readonly kind: 'epoch'; readonly nodeId: string };

const KEYS = Array.from({ length: 24 }, (_, i) => `key-${i}`);
const keyArb = fc.constantFrom(...KEYS);
const segmentArb = fc.constantFrom('s0', 's1', 's2', 's3', 's4');
const nodeArb = fc.constantFrom('n0', 'n1', 'n2');

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('mountSegment' as const),
      segmentId: segmentArb,
      nodeId: nodeArb,
      size: fc.integer({ min: 1, max: 300 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant('unmountSegment' as const), segmentId: segmentArb }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      type: fc.constant('putStart' as const),
      key: keyArb,
      size: fc.integer({ min: 1, max: 40 }),
      replicaNum: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 5, arbitrary: fc.record({ type: fc.constant('putEnd' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('putRevoke' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('remove' as const), key: keyArb }) },
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 14,
    arbitrary: fc.record({ kind: fc.constant('command' as const), command: commandArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('evict' as const),
      highWater: fc.double({ min: 0.1, max: 1, noNaN: true }),
      lowWater: fc.double({ min: 0, max: 0.1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('epoch' as const), nodeId: nodeArb }) },
);

const mount = (segmentId: string, nodeId: string, size: number): Step => ({
  kind: 'command',
  command: { type: 'mountSegment', segmentId, nodeId, size },
});

const START: readonly Step[] = [
  mount('s0', 'n0', 400),
  mount('s1', 'n1', 300),
  mount('s2', 'n2', 250),
];
const stepsArb = (max: number): fc.Arbitrary<Step[]> => fc.array(stepArb, { maxLength: max });

const noLeases: DecideContext = { isReadLeased: () => false };

/** Runs `steps` through decide + fold from `state`; returns the logged events and the state. */
function play(
  from: MetadataState,
  steps: readonly Step[],
): { log: LoggedEvent[]; state: MetadataState } {
  let state = from;
  const log: LoggedEvent[] = [];
  for (const step of steps) {
    let event;
    if (step.kind === 'command') {
      const decision = decide(state, step.command, noLeases);
      if (!decision.ok) continue;
      event = decision.event;
    } else if (step.kind === 'evict') {
      event = decideEviction(state, step, noLeases);
      if (event === null) continue;
    } else {
      event = { op: 'EPOCH' as const, epoch: state.epoch + 1, nodeId: step.nodeId };
    }
    const logged = { seq: state.appliedSeq + 1, epoch: state.epoch, ts: 0, event };
    log.push(logged);
    state = fold(state, logged);
  }
  return { log, state };
}

/** `state` with the record of `key` replaced (null: dropped) and nothing else: a corruption. */
function withRecord(state: MetadataState, key: string, record: ObjectRecord | null): MetadataState {
  const hash = keyHash(key);
  const shardId = hash % SHARD_COUNT;
  const shards = [...state.shards];
  const shard = [...(shards[shardId] ?? [])];
  const bucket = (shard[bucketOf(hash)] ?? []).filter((r) => r.key !== key);
  if (record !== null) bucket.push(record);
  shard[bucketOf(hash)] = bucket;
  shards[shardId] = shard;
  return produce(state, (draft) => {
    (draft as { shards: unknown }).shards = shards;
  });
}

type Corruption =
  | {
      readonly kind: 'replicaOffset' | 'replicaStatus' | 'replicaNode' | 'size' | 'missing';
      readonly pick: number;
    }
  | { readonly kind: 'extra'; readonly key: string; readonly offset: number };

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      'replicaOffset' as const,
      'replicaStatus' as const,
      'replicaNode' as const,
      'size' as const,
      'missing' as const,
    ),
    pick: fc.nat(),
  }),
  fc.record({
    kind: fc.constant('extra' as const),
    key: fc.string({ minLength: 1, maxLength: 12 }).map((s) => `extra-${s}`),
    offset: fc.nat({ max: 200 }),
  }),
);

/** Applies `corruption` to a copy of `state`; returns the copy and the key it hit. */
function corrupt(
  state: MetadataState,
  corruption: Corruption,
): { state: MetadataState; key: string } {
  const objects = [...allObjects(state)];
  if (corruption.kind === 'extra' || objects.length === 0) {
    const key = corruption.kind === 'extra' ? corruption.key : 'extra-key';
    const offset = corruption.kind === 'extra' ? corruption.offset : 0;
    const record: ObjectRecord = {
      key,
      size: 5,
      replicas: [{ segmentId: 's0', nodeId: 'n0', offset, length: 5, status: 'complete' }],
      lastSeq: Math.max(1, state.appliedSeq),
    };
    return { state: withRecord(state, key, record), key };
  }
  const victim = objects[corruption.pick % objects.length] as ObjectRecord;
  const [first, ...rest] = victim.replicas;
  if (first === undefined) throw new Error('an object without replicas');
  let changed: ObjectRecord | null;
  switch (corruption.kind) {
    case 'missing':
      changed = null;
      break;
    case 'size':
      changed = { ...victim, size: victim.size + 1 };
      break;
    case 'replicaOffset':
      changed = { ...victim, replicas: [{ ...first, offset: first.offset + 1 }, ...rest] };
      break;
    case 'replicaStatus':
      changed = {
        ...victim,
        replicas: [
          { ...first, status: first.status === 'complete' ? 'processing' : 'complete' },
          ...rest,
        ],
      };
      break;
    case 'replicaNode':
      changed = { ...victim, replicas: [{ ...first, nodeId: `${first.nodeId}-x` }, ...rest] };
      break;
  }
  return { state: withRecord(state, victim.key, changed), key: victim.key };
}

/** Every observable part of a state, for equality. */
function contents(state: MetadataState): unknown {
  return {
    objects: [...allObjects(state)].sort((a, b) => (a.key < b.key ? -1 : 1)),
    segments: [...allSegments(state)],
    scalars: [
      state.appliedSeq,
      state.epoch,
      state.epochNodeId,
      state.objectCount,
      state.used,
      state.capacity,
    ],
  };
}

const ALL_SHARDS = Array.from({ length: SHARD_COUNT }, (_, i) => i);
const maxKeysArb = fc.constantFrom(0, 1, 2, 100);

describe('verification properties', () => {
  it('the generators reach every verification path', () => {
    const seen = new Set<string>();
    for (const [steps, corruption, maxKeysPerShard] of fc.sample(
      fc.tuple(stepsArb(60), corruptionArb, maxKeysArb),
      { numRuns: 300, seed: 7 },
    )) {
      const primary = play(emptyState(), [...START, ...steps]).state;
      const { state: standby, key } = corrupt(primary, corruption);
      const request = buildVerifyRequest(standby, [shardOf(key)], { maxKeysPerShard });
      const response = answerVerify(primary, request, { maxMismatches: 10_000 });
      if (response.status !== 'MISMATCH') continue;
      if (response.shardResets.length > 0) seen.add('reset');
      for (const c of response.corrections) seen.add(c.record === null ? 'extra' : 'fix');
    }
    for (const [before, after] of fc.sample(fc.tuple(stepsArb(50), stepsArb(50)), {
      numRuns: 300,
      seed: 7,
    })) {
      const standby = play(emptyState(), [...START, ...before]).state;
      const { log, state: primary } = play(standby, after);
      const request = buildVerifyRequest(standby, ALL_SHARDS, { maxKeysPerShard: 0 });
      const response = answerVerify(primary, request, { recentEvents: log });
      if (response.status === 'OK' && log.length > 0 && response.shardsUnjudged === 0)
        seen.add('lagging, all judged');
      if (log.some((l) => l.event.op === 'REMOVE' || l.event.op === 'EVICTION'))
        seen.add('removals after S');
    }
    expect([...seen].sort()).toEqual(
      ['extra', 'fix', 'lagging, all judged', 'removals after S', 'reset'].sort(),
    );
  }, 180_000);

  it('any single corruption is found when its shard is sampled, and repair restores equal digests', () => {
    fc.assert(
      fc.property(
        stepsArb(60),
        corruptionArb,
        maxKeysArb,
        fc.array(fc.nat({ max: SHARD_COUNT - 1 }), { maxLength: 20 }),
        (steps, corruption, maxKeysPerShard, others) => {
          const primary = play(emptyState(), [...START, ...steps]).state;
          const { state: standby, key } = corrupt(primary, corruption);
          const request = buildVerifyRequest(standby, [shardOf(key), ...others], {
            maxKeysPerShard,
          });
          const response = answerVerify(primary, request, { maxMismatches: 10_000 });
          expect(response.status).toBe('MISMATCH');
          if (response.status !== 'MISMATCH') return;
          const repaired = applyCorrections(standby, response);
          // stateDigest covers every shard digest and the segments' free ranges.
          expect(stateDigest(repaired)).toBe(stateDigest(primary));
          expect(contents(repaired)).toEqual(contents(primary));
          expect(Object.isFrozen(repaired)).toBe(true);
          // The repaired standby now verifies clean.
          const again = answerVerify(
            primary,
            buildVerifyRequest(repaired, request.shardIds, { maxKeysPerShard }),
          );
          expect(again.status).toBe('OK');
        },
      ),
      { numRuns: propRuns() },
    );
  }, 300_000);

  it('no false mismatch when writes interleave with verification at lagging seqs', () => {
    fc.assert(
      fc.property(
        stepsArb(50),
        stepsArb(50),
        maxKeysArb,
        fc.boolean(),
        (before, after, maxKeysPerShard, withHistory) => {
          const standby = play(emptyState(), [...START, ...before]).state;
          const { log, state: primary } = play(standby, after);
          const request = buildVerifyRequest(standby, ALL_SHARDS, { maxKeysPerShard });
          const response = answerVerify(primary, request, {
            maxMismatches: 0,
            ...(withHistory ? { recentEvents: log } : {}),
          });
          expect(response).toMatchObject({ status: 'OK', forSeq: standby.appliedSeq });
        },
      ),
      { numRuns: propRuns() },
    );
  }, 300_000);

  it('a corruption of a key untouched since the lagging seq is still found, with the recent events', () => {
    fc.assert(
      fc.property(
        stepsArb(50),
        stepsArb(30),
        corruptionArb,
        maxKeysArb,
        (before, after, corruption, maxKeysPerShard) => {
          const clean = play(emptyState(), [...START, ...before]).state;
          const { log, state: primary } = play(clean, after);
          const { state: standby, key } = corrupt(clean, corruption);
          const touched = new Set(log.map((l) => ('key' in l.event ? l.event.key : '')));
          for (const l of log)
            if (l.event.op === 'EVICTION') for (const k of l.event.keys) touched.add(k);
          const unmounted = log.some((l) => l.event.op === 'UNMOUNT_SEGMENT');
          fc.pre(
            !touched.has(key) && !unmounted && getObject(primary, key) === getObject(clean, key),
          );
          const request = buildVerifyRequest(standby, [shardOf(key)], { maxKeysPerShard });
          const response = answerVerify(primary, request, {
            maxMismatches: 10_000,
            recentEvents: log,
          });
          // Found, unless the shard is busy (changed after S) and only the sample could be judged.
          if (response.status === 'OK') {
            expect(response.shardsUnjudged).toBe(1);
            expect(request.entries.some((e) => e.key === key)).toBe(false);
            return;
          }
          expect(response.status).toBe('MISMATCH');
          if (response.status !== 'MISMATCH') return;
          const repaired = applyCorrections(standby, response);
          expect(shardDigest(repaired, shardOf(key))).toBe(shardDigest(clean, shardOf(key)));
          expect(stateDigest(repaired)).toBe(stateDigest(clean));
          expectSummariesOfRecords(repaired);
        },
      ),
      { numRuns: propRuns() },
    );
  }, 300_000);

  it('snapshot round trip: same digest, objects, segments; folding on continues identically', () => {
    fc.assert(
      fc.property(
        stepsArb(60),
        stepsArb(20),
        fc.integer({ min: 1, max: 9 }),
        fc.boolean(),
        (steps, more, chunkSize, viaBytes) => {
          const source = play(emptyState(), [...START, ...steps]).state;
          const builder = new SnapshotBuilder();
          for (const chunk of snapshotChunks(source, chunkSize)) {
            builder.add(viaBytes ? decodeChunk(encodeChunk(chunk)) : chunk);
          }
          const rebuilt = builder.finish();
          expect(stateDigest(rebuilt)).toBe(stateDigest(source));
          expectSummariesOfRecords(rebuilt);
          expect(contents(rebuilt)).toEqual(contents(source));
          expect([...allObjects(rebuilt)]).toEqual([...allObjects(source)]);
          expect([...allSegments(rebuilt)].map((s) => s.id)).toEqual(
            [...allSegments(source)].map((s) => s.id),
          );
          const { log, state: next } = play(source, more);
          let follower = rebuilt;
          for (const logged of log) follower = fold(follower, logged);
          expect(contents(follower)).toEqual(contents(next));
          expectSummariesOfRecords(follower);
        },
      ),
      { numRuns: propRuns() },
    );
  }, 300_000);
});
