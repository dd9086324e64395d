import { produce } from 'immer';
import { describe, expect, it } from 'vitest';
import { objectChecksum, prefixHash, stateDigest } from '../../src/domain/log/checksum.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import { bucketOf, keyHash, SHARD_COUNT, shardOf } from '../../src/domain/model/shard.ts';
import { allSegments, emptyState, getObject, getSegment } from '../../src/domain/model/state.ts';
import type {
  LoggedEvent,
  MetadataEvent,
  MetadataState,
  ObjectRecord,
} from '../../src/domain/model/types.ts';
import { answerVerify } from '../../src/domain/verify/answer.ts';
import { applyCorrections } from '../../src/domain/verify/repair.ts';
import {
  buildVerifyRequest,
  planRound,
  type VerifyRequest,
} from '../../src/domain/verify/sampling.ts';
import { shardVerifyDigest } from '../../src/domain/verify/digests.ts';
import { RepairError, VerifyInputError } from '../../src/domain/verify/verifyErrors.ts';

/** Folds `events` after `state`, returning the log and the state. */
function run(
  state: MetadataState,
  events: readonly MetadataEvent[],
): { log: LoggedEvent[]; state: MetadataState } {
  const log: LoggedEvent[] = [];
  for (const event of events) {
    const logged = { seq: state.appliedSeq + 1, epoch: 1, ts: 0, event };
    log.push(logged);
    state = fold(state, logged);
  }
  return { log, state };
}

const mount = (segmentId: string, nodeId: string, size: number): MetadataEvent => ({
  op: 'MOUNT_SEGMENT',
  segmentId,
  nodeId,
  size,
});

/** PUT_START + PUT_END of `key` with one replica at `offset` of s0 (node n0). */
function put(key: string, offset: number, size = 10, segmentId = 's0'): MetadataEvent[] {
  const nodeId = segmentId === 's0' ? 'n0' : 'n1';
  return [
    {
      op: 'PUT_START',
      key,
      size,
      replicas: [{ segmentId, nodeId, offset, length: size, status: 'processing' }],
    },
    { op: 'PUT_END', key },
  ];
}

function base(): MetadataState {
  return run(emptyState(), [
    mount('s0', 'n0', 1000),
    mount('s1', 'n1', 1000),
    ...put('a', 0),
    ...put('b', 10),
    ...put('c', 20),
  ]).state;
}

/** `state` with `key`'s record replaced (null: dropped), segments untouched: a corruption. */
function withRecord(state: MetadataState, key: string, record: ObjectRecord | null): MetadataState {
  const hash = keyHash(key);
  const shards = [...state.shards];
  const shard = [...(shards[hash % SHARD_COUNT] ?? [])];
  const bucket = (shard[bucketOf(hash)] ?? []).filter((r) => r.key !== key);
  if (record !== null) bucket.push(record);
  shard[bucketOf(hash)] = bucket;
  shards[hash % SHARD_COUNT] = shard;
  return produce(state, (draft) => {
    (draft as { shards: unknown }).shards = shards;
  });
}

/** `n` distinct keys that all fall in one shard. */
function keysInOneShard(n: number): string[] {
  const shard = shardOf('same-0');
  const keys: string[] = [];
  for (let i = 0; keys.length < n; i++) if (shardOf(`same-${i}`) === shard) keys.push(`same-${i}`);
  return keys;
}

const shardsOf = (...keys: string[]): number[] => keys.map(shardOf);

describe('planRound', () => {
  it('samples 10% of 1024 shards and covers every shard within 10 rounds', () => {
    const rounds = Array.from({ length: 10 }, (_, r) => planRound(r));
    for (const ids of rounds) expect(ids.length).toBeLessThanOrEqual(103);
    expect(rounds[0]).toHaveLength(103);
    const all = rounds.flat();
    expect(new Set(all).size).toBe(all.length);
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: 1024 }, (_, i) => i));
    expect(planRound(10)).toEqual(planRound(0));
    expect(planRound(13)).toEqual(planRound(3));
  });

  it('honours fraction and shardCount', () => {
    expect(planRound(0, { fraction: 0.5, shardCount: 10 })).toEqual([0, 1, 2, 3, 4]);
    expect(planRound(1, { fraction: 0.5, shardCount: 10 })).toEqual([5, 6, 7, 8, 9]);
    expect(planRound(5, { fraction: 1, shardCount: 3 })).toEqual([0, 1, 2]);
    expect(planRound(2, { fraction: 0.3, shardCount: 7 })).toEqual([6]);
  });

  it('refuses bad arguments with a typed error naming the field', () => {
    expect(() => planRound(-1)).toThrow(VerifyInputError);
    const error = (() => {
      try {
        planRound(0, { fraction: 0 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(VerifyInputError);
    expect(error).toMatchObject({ name: 'VerifyInputError', field: 'fraction' });
    expect(() => planRound(0, { shardCount: 0 })).toThrow(VerifyInputError);
  });
});

describe('buildVerifyRequest', () => {
  it('sends every key of small shards with checksums, digests and key counts', () => {
    const state = base();
    const ids = shardsOf('a', 'b');
    const request = buildVerifyRequest(state, [...ids, ids[0] as number]);
    expect(request.appliedSeq).toBe(state.appliedSeq);
    expect(request.shardIds).toEqual([...new Set(ids)].sort((x, y) => x - y));
    const a = getObject(state, 'a') as ObjectRecord;
    expect(request.entries).toContainEqual({
      prefixHash: prefixHash('a'),
      key: 'a',
      checksum: objectChecksum(a),
    });
    expect(request.entries.map((e) => e.key)).not.toContain('c');
    for (const id of request.shardIds) {
      expect(request.shardDigests[id]).toBe(shardVerifyDigest(state, id));
      expect(request.shardKeyCounts[id]).toBe(
        request.entries.filter((e) => shardOf(e.key) === id).length,
      );
    }
    expect(JSON.parse(JSON.stringify(request))).toEqual(request);
  });

  it('sends a rotating window of at most maxKeysPerShard keys of a large shard', () => {
    const keys = keysInOneShard(5);
    const state = run(emptyState(), [
      mount('s0', 'n0', 1000),
      ...keys.flatMap((k, i) => put(k, i * 10)),
    ]).state;
    const shard = shardOf(keys[0] as string);
    const seen = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const request = buildVerifyRequest(state, [shard], {
        maxKeysPerShard: 2,
        sampleOffset: round,
      });
      expect(request.entries).toHaveLength(2);
      expect(request.shardKeyCounts[shard]).toBe(5);
      for (const e of request.entries) seen.add(e.key);
    }
    expect([...seen].sort()).toEqual([...keys].sort());
  });

  it('refuses a shard id out of range', () => {
    expect(() => buildVerifyRequest(base(), [SHARD_COUNT])).toThrow(VerifyInputError);
    expect(() => buildVerifyRequest(base(), [0], { maxKeysPerShard: -1 })).toThrow(
      VerifyInputError,
    );
  });

  it('shardVerifyDigest depends on the shard content, not on its history', () => {
    const [k1, k2] = keysInOneShard(2) as [string, string];
    const shard = shardOf(k1);
    const seg = mount('s0', 'n0', 1000);
    const one = run(emptyState(), [seg, ...put(k1, 0), ...put(k2, 10)]).state;
    const other = run(emptyState(), [seg, ...put(k2, 10), ...put(k1, 0)]).state;
    expect(shardVerifyDigest(one, shard)).toBe(shardVerifyDigest(other, shard));
    expect(shardVerifyDigest(one, shard)).not.toBe(0);
    expect(shardVerifyDigest(emptyState(), shard)).toBe(0);
    const r1 = getObject(one, k1) as ObjectRecord;
    const changed = withRecord(one, k1, { ...r1, size: r1.size + 1 });
    expect(shardVerifyDigest(changed, shard)).not.toBe(shardVerifyDigest(one, shard));
    expect(shardVerifyDigest(withRecord(one, k1, null), shard)).not.toBe(
      shardVerifyDigest(one, shard),
    );
    // lastSeq is not content.
    expect(shardVerifyDigest(withRecord(one, k1, { ...r1, lastSeq: 1 }), shard)).toBe(
      shardVerifyDigest(one, shard),
    );
  });

  it('memoised digests follow every change: equal to the digest of an unfrozen copy', () => {
    // An unfrozen copy is never memoised, so its digest is computed from scratch.
    const fresh = (state: MetadataState): MetadataState => ({
      ...state,
      shards: state.shards.map((buckets) => buckets.map((bucket) => [...bucket])),
    });
    const keys = keysInOneShard(6);
    const shard = shardOf(keys[0] as string);
    let state = run(emptyState(), [mount('s0', 'n0', 1000)]).state;
    const events: MetadataEvent[] = [];
    keys.forEach((key, i) => events.push(...put(key, i * 10)));
    events.push({ op: 'REMOVE', key: keys[2] as string }, ...put(keys[2] as string, 100, 20));
    for (const event of events) {
      state = run(state, [event]).state;
      expect(shardVerifyDigest(state, shard)).toBe(shardVerifyDigest(fresh(state), shard));
    }
  });
});

describe('answerVerify', () => {
  it('answers OK for an identical standby', () => {
    const state = base();
    const response = answerVerify(state, buildVerifyRequest(state, shardsOf('a', 'b', 'c')));
    expect(response).toEqual({
      status: 'OK',
      forSeq: state.appliedSeq,
      keysChecked: 3,
      shardsUnjudged: 0,
    });
  });

  it('answers a changed record with the correct one', () => {
    const primary = base();
    const a = getObject(primary, 'a') as ObjectRecord;
    const standby = withRecord(primary, 'a', { ...a, size: 11 });
    const response = answerVerify(primary, buildVerifyRequest(standby, shardsOf('a')));
    expect(response).toMatchObject({
      status: 'MISMATCH',
      corrections: [{ key: 'a', record: a }],
      shardResets: [],
    });
  });

  it('finds a missing key and an extra key of a fully sent shard', () => {
    const primary = base();
    const extra: ObjectRecord = {
      key: 'ghost',
      size: 10,
      replicas: [{ segmentId: 's0', nodeId: 'n0', offset: 500, length: 10, status: 'complete' }],
      lastSeq: 1,
    };
    const standby = withRecord(withRecord(primary, 'b', null), 'ghost', extra);
    const response = answerVerify(primary, buildVerifyRequest(standby, shardsOf('b', 'ghost')));
    expect(response.status).toBe('MISMATCH');
    if (response.status !== 'MISMATCH') return;
    expect([...response.corrections].sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual([
      { key: 'b', record: getObject(primary, 'b') },
      { key: 'ghost', record: null },
    ]);
  });

  it('resets a quiet shard whose digest differs when only a sample was sent', () => {
    const keys = keysInOneShard(4);
    const primary = run(emptyState(), [
      mount('s0', 'n0', 1000),
      ...keys.flatMap((k, i) => put(k, i * 10)),
    ]).state;
    const standby = withRecord(primary, keys[3] as string, null);
    const shard = shardOf(keys[0] as string);
    const response = answerVerify(
      primary,
      buildVerifyRequest(standby, [shard], { maxKeysPerShard: 1 }),
    );
    expect(response).toMatchObject({ status: 'MISMATCH', corrections: [] });
    if (response.status !== 'MISMATCH') return;
    expect(response.shardResets).toHaveLength(1);
    expect(response.shardResets[0]?.records.map((r) => r.key).sort()).toEqual([...keys].sort());
    const repaired = applyCorrections(standby, response);
    expect(stateDigest(repaired)).toBe(stateDigest(primary));
  });

  it('skips keys changed after the standby seq and legit keys removed since', () => {
    const standby = base();
    const primary = run(standby, [
      { op: 'REMOVE', key: 'a' },
      {
        op: 'PUT_START',
        key: 'b2',
        size: 5,
        replicas: [{ segmentId: 's1', nodeId: 'n1', offset: 0, length: 5, status: 'processing' }],
      },
      { op: 'UNMOUNT_SEGMENT', segmentId: 's1' },
    ]).state;
    const request = buildVerifyRequest(standby, shardsOf('a', 'b', 'c', 'b2'), {
      maxKeysPerShard: 0,
    });
    expect(answerVerify(primary, request)).toMatchObject({ status: 'OK' });
    const full = buildVerifyRequest(standby, shardsOf('a', 'b', 'c', 'b2'));
    expect(answerVerify(primary, full)).toMatchObject({ status: 'OK', keysChecked: 2 });
  });

  it('with the recent events, tells an extra key from a key removed after the standby seq', () => {
    const clean = base();
    const { log, state: primary } = run(clean, [{ op: 'REMOVE', key: 'a' }, ...put('d', 100)]);
    const b = getObject(clean, 'b') as ObjectRecord;
    const standby = withRecord(clean, 'zz-extra', { ...b, key: 'zz-extra' });
    const request = buildVerifyRequest(standby, shardsOf('a', 'zz-extra'));
    // Without the history the primary cannot tell: it skips both.
    expect(answerVerify(primary, request)).toMatchObject({ status: 'OK' });
    expect(answerVerify(primary, request, { recentEvents: log })).toMatchObject({
      status: 'MISMATCH',
      corrections: [{ key: 'zz-extra', record: null }],
    });
    // History that does not cover (S, P] is not trusted.
    expect(answerVerify(primary, request, { recentEvents: log.slice(1) })).toMatchObject({
      status: 'OK',
    });
  });

  it("asks a standby whose epoch is not the log's (a foreign fence folded) for a full sync", () => {
    const fence = (epoch: number, nodeId: string): MetadataEvent => ({
      op: 'EPOCH',
      epoch,
      nodeId,
    });
    const { log, state: primary } = run(base(), [fence(5, 'n1'), ...put('d', 100)]);
    const shards = shardsOf('a');
    const ok = (standby: MetadataState, recentEvents?: readonly LoggedEvent[]) =>
      answerVerify(
        primary,
        buildVerifyRequest(standby, shards),
        recentEvents === undefined ? {} : { recentEvents },
      ).status;
    // Faithful standbys: caught up, before the fence, after it.
    expect(ok(primary)).toBe('OK');
    expect(ok(base(), log)).toBe('OK');
    expect(ok(base())).toBe('OK');
    expect(ok(run(base(), [fence(5, 'n1')]).state, log)).toBe('OK');
    // Folded a forged fence instead of the real one, or as well.
    const forged = run(base(), [fence(1e9, 'x'), ...put('d', 100)]).state;
    expect(answerVerify(primary, buildVerifyRequest(forged, shards))).toMatchObject({
      status: 'NEED_FULL_SYNC',
      reason: 'epoch',
    });
    expect(ok(run(base(), [fence(1e9, 'x')]).state)).toBe('NEED_FULL_SYNC');
    expect(ok(run(base(), [fence(5, 'n2'), ...put('d', 100)]).state)).toBe('NEED_FULL_SYNC');
    expect(ok(run(base(), [fence(3, 'n2')]).state, log)).toBe('NEED_FULL_SYNC');
  });

  it('asks for a full sync past maxGap or maxMismatches', () => {
    const standby = base();
    const primary = run(standby, put('d', 100)).state;
    const request = buildVerifyRequest(standby, shardsOf('a'));
    expect(answerVerify(primary, request, { maxGap: 1 })).toMatchObject({
      status: 'NEED_FULL_SYNC',
      reason: 'gap',
    });
    expect(answerVerify(primary, request, { maxGap: 2 }).status).toBe('OK');
    const broken = withRecord(withRecord(primary, 'a', null), 'b', null);
    const twoMissing = buildVerifyRequest(broken, shardsOf('a', 'b'));
    expect(answerVerify(primary, twoMissing, { maxMismatches: 1 })).toMatchObject({
      status: 'NEED_FULL_SYNC',
      reason: 'mismatches',
    });
    expect(answerVerify(primary, twoMissing, { maxMismatches: 2 }).status).toBe('MISMATCH');
  });

  it('answers a standby ahead of the primary OK with every shard unjudged', () => {
    const primary = base();
    const standby = run(primary, put('d', 100)).state;
    expect(answerVerify(primary, buildVerifyRequest(standby, [1, 2]))).toEqual({
      status: 'OK',
      forSeq: standby.appliedSeq,
      keysChecked: 0,
      shardsUnjudged: 2,
    });
  });

  it('refuses a malformed request with a typed error', () => {
    const state = base();
    const good = buildVerifyRequest(state, shardsOf('a'));
    const bad: VerifyRequest[] = [
      { ...good, appliedSeq: -1 },
      { ...good, shardIds: [SHARD_COUNT] },
      { ...good, entries: [{ key: 'a', checksum: 1, prefixHash: 0 }] },
      { ...good, shardIds: [], entries: good.entries },
    ];
    for (const request of bad) expect(() => answerVerify(state, request)).toThrow(VerifyInputError);
  });
});

describe('applyCorrections', () => {
  it('returns the same state when nothing changes, and never mutates its input', () => {
    const state = base();
    expect(applyCorrections(state, [])).toBe(state);
    expect(applyCorrections(state, [{ key: 'a', record: getObject(state, 'a') ?? null }])).toBe(
      state,
    );
    const before = stateDigest(state);
    const repaired = applyCorrections(state, [{ key: 'a', record: null }]);
    expect(stateDigest(state)).toBe(before);
    expect(getObject(repaired, 'a')).toBeUndefined();
    expect(repaired.objectCount).toBe(2);
    expect(getSegment(repaired, 's0')?.used).toBe(20);
    expect(repaired.used).toBe(20);
    expect(Object.isFrozen(repaired)).toBe(true);
    expect(Object.isFrozen(getSegment(repaired, 's0'))).toBe(true);
  });

  it('recomputes the free ranges of the segments a corrupted replica touched', () => {
    const primary = base();
    const b = getObject(primary, 'b') as ObjectRecord;
    const moved = {
      ...b,
      replicas: [{ ...(b.replicas[0] as ObjectRecord['replicas'][0]), offset: 15 }],
    };
    const standby = withRecord(primary, 'b', moved);
    const response = answerVerify(primary, buildVerifyRequest(standby, shardsOf('b')));
    expect(response.status).toBe('MISMATCH');
    if (response.status !== 'MISMATCH') return;
    const repaired = applyCorrections(standby, response);
    expect([...allSegments(repaired)]).toEqual([...allSegments(primary)]);
    expect(stateDigest(repaired)).toBe(stateDigest(primary));
  });

  it('leaves alone keys the standby folded past the verified state', () => {
    const verified = base();
    const a = getObject(verified, 'a') as ObjectRecord;
    const corrupted = withRecord(verified, 'a', { ...a, size: 99 });
    const now = run(corrupted, [{ op: 'REMOVE', key: 'c' }]).state;
    const repaired = applyCorrections(
      now,
      [
        { key: 'a', record: a },
        { key: 'c', record: getObject(verified, 'c') ?? null },
      ],
      corrupted,
    );
    expect(getObject(repaired, 'a')).toEqual(a);
    expect(getObject(repaired, 'c')).toBeUndefined();
  });

  it('throws a RepairError and changes nothing when a record cannot be placed', () => {
    const state = base();
    const a = getObject(state, 'a') as ObjectRecord;
    const onGhost = {
      ...a,
      replicas: [{ ...(a.replicas[0] as ObjectRecord['replicas'][0]), segmentId: 'nope' }],
    };
    expect(() => applyCorrections(state, [{ key: 'a', record: onGhost }])).toThrow(RepairError);
    const overlapping = { ...a, key: 'new', replicas: a.replicas };
    let error: unknown;
    try {
      applyCorrections(state, [{ key: 'new', record: overlapping }]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RepairError);
    expect(error).toMatchObject({ name: 'RepairError', segmentId: 's0' });
    const future = { ...a, lastSeq: state.appliedSeq + 1 };
    expect(() => applyCorrections(state, [{ key: 'a', record: future }])).toThrow(RepairError);
    expect(getObject(state, 'a')).toBe(a);
  });
});
