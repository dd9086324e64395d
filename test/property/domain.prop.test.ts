import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shardDigest, stateDigest } from '../../src/domain/log/checksum.ts';
import { decodeBatch, encodeBatch } from '../../src/domain/log/codec.ts';
import { decide, type DecideContext } from '../../src/domain/decide/decide.ts';
import { DomainError } from '../../src/domain/model/errors.ts';
import { fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import { decideEviction } from '../../src/domain/decide/eviction.ts';
import { fold, foldAll, FoldDraft } from '../../src/domain/fold/fold.ts';
import { SESSION_TTL_MS } from '../../src/domain/model/limits.ts';
import { requestStatus } from '../../src/domain/decide/sessions.ts';
import { shardOf, SHARD_COUNT } from '../../src/domain/model/shard.ts';
import {
  allObjects,
  allSegments,
  allSessions,
  emptyState,
  getSession,
  shardObjects,
} from '../../src/domain/model/state.ts';
import type {
  Command,
  LoggedEvent,
  MetadataState,
  RequestOrigin,
  SessionResult,
} from '../../src/domain/model/types.ts';
import { propRuns } from './runs.ts';
import { expectSummariesOfRecords } from './shardSummaries.ts';

/**
 * A step of a generated history: a client command (of one of three client sessions, or of no
 * session; a retry repeats the session's last request), an eviction round, a new primary, or
 * time passing (sessions expire).
 */
type Step =
  | {
      readonly kind: 'command';
      readonly command: Command;
      readonly leased: readonly string[];
      readonly session?: { readonly client: number; readonly retry: boolean; readonly lag: number };
    }
  | { readonly kind: 'time'; readonly ms: number }
  | {
      readonly kind: 'evict';
      readonly highWater: number;
      readonly lowWater: number;
      readonly leased: readonly string[];
    }
  | { readonly kind: 'epoch'; readonly nodeId: string };

const keyArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'ключ', '🔑');
const segmentArb = fc.constantFrom('s0', 's1', 's2', 's3', 's4');
const nodeArb = fc.constantFrom('n0', 'n1', 'n2');
const leasedArb = fc.subarray(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'ключ', '🔑'], {
  maxLength: 3,
});

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 2,
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
    weight: 5,
    arbitrary: fc.record({
      type: fc.constant('putStart' as const),
      key: keyArb,
      size: fc.integer({ min: 1, max: 120 }),
      replicaNum: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('putEnd' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('putRevoke' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('remove' as const), key: keyArb }) },
  // Bad input: must be refused and change nothing.
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('putStart' as const),
      key: fc.constantFrom('', 'x'.repeat(1025)),
      size: fc.integer({ min: -5, max: 5 }),
      replicaNum: fc.integer({ min: -1, max: 10 }),
    }),
  },
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record(
      {
        kind: fc.constant('command' as const),
        command: commandArb,
        leased: leasedArb,
        session: fc.record({ client: fc.nat(2), retry: fc.boolean(), lag: fc.nat(3) }),
      },
      { requiredKeys: ['kind', 'command', 'leased'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('time' as const),
      ms: fc.oneof(fc.integer({ min: 1, max: 60_000 }), fc.constant(SESSION_TTL_MS + 1)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('evict' as const),
      highWater: fc.double({ min: 0.1, max: 1, noNaN: true }),
      lowWater: fc.double({ min: 0, max: 0.1, noNaN: true }),
      leased: leasedArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('epoch' as const), nodeId: nodeArb }) },
);

const mount = (segmentId: string, nodeId: string, size: number): Step => ({
  kind: 'command',
  command: { type: 'mountSegment', segmentId, nodeId, size },
  leased: [],
});

/** Histories start with three segments on three nodes, so most puts can succeed. */
const historyArb = fc
  .array(stepArb, { minLength: 1, maxLength: 80, size: '+1' })
  .map((steps) => [
    mount('s0', 'n0', 250),
    mount('s1', 'n1', 200),
    mount('s2', 'n2', 150),
    ...steps,
  ]);

function ctxOf(leased: readonly string[]): DecideContext {
  return { isReadLeased: (key) => leased.includes(key) };
}

/** Every allocation invariant of a state. */
function checkInvariants(state: MetadataState): void {
  const segments = new Map([...allSegments(state)].map((s) => [s.id, s]));
  const intervals = new Map<string, [number, number][]>();
  let count = 0;
  for (const record of allObjects(state)) {
    count++;
    expect(shardOf(record.key)).toBeLessThan(SHARD_COUNT);
    expect(record.replicas.length).toBeGreaterThan(0);
    const nodes = new Set(record.replicas.map((r) => r.nodeId));
    expect(nodes.size, `two replicas of ${record.key} on one node`).toBe(record.replicas.length);
    for (const r of record.replicas) {
      const segment = segments.get(r.segmentId);
      expect(segment, `replica of ${record.key} on unmounted ${r.segmentId}`).toBeDefined();
      expect(segment?.nodeId).toBe(r.nodeId);
      expect(r.length).toBe(record.size);
      const list = intervals.get(r.segmentId) ?? [];
      list.push([r.offset, r.length]);
      intervals.set(r.segmentId, list);
    }
    expect(record.lastSeq).toBeLessThanOrEqual(state.appliedSeq);
  }
  expect(state.objectCount).toBe(count);
  let used = 0;
  let capacity = 0;
  for (const segment of segments.values()) {
    const replicas = intervals.get(segment.id) ?? [];
    const replicaBytes = replicas.reduce((n, [, len]) => n + len, 0);
    expect(segment.used, `used of ${segment.id}`).toBe(replicaBytes);
    // Replicas and free ranges tile [0, size) exactly: no overlap, nothing lost.
    const all = [
      ...replicas,
      ...segment.free.map((f): [number, number] => [f.offset, f.length]),
    ].sort((x, y) => x[0] - y[0]);
    let at = 0;
    for (const [offset, length] of all) {
      expect(offset, `overlap or hole in ${segment.id}`).toBe(at);
      at = offset + length;
    }
    expect(at).toBe(segment.size);
    for (let i = 1; i < segment.free.length; i++) {
      expect(segment.free[i]!.offset).toBeGreaterThan(
        segment.free[i - 1]!.offset + segment.free[i - 1]!.length,
      );
    }
    used += segment.used;
    capacity += segment.size;
  }
  expect(state.used).toBe(used);
  expect(state.capacity).toBe(capacity);
}

/**
 * Runs a history through decide + fold; returns the log and the final state. With `draft`, the
 * whole history is decided against and folded into one {@link FoldDraft} (as the primary's
 * write pipeline does with a batch), frozen once at the end.
 */
function play(
  steps: readonly Step[],
  check: boolean,
  draft?: FoldDraft,
): { log: LoggedEvent[]; state: MetadataState; replays: number } {
  let state = draft?.state ?? emptyState();
  let epoch = 1;
  let now = 1_700_000_000_000;
  let replays = 0;
  const log: LoggedEvent[] = [];
  /** Per client session: the next request number and its last request (and result, if applied). */
  const clients = [0, 1, 2].map((c) => ({
    sessionId: `${c}`.repeat(32),
    next: 1,
    last: undefined as
      { command: Command; origin: RequestOrigin; result?: SessionResult | undefined } | undefined,
  }));
  for (const step of steps) {
    if (step.kind === 'time') {
      now += step.ms;
      continue;
    }
    let event;
    let origin: RequestOrigin | undefined;
    if (step.kind === 'command') {
      let command = step.command;
      const client = step.session === undefined ? undefined : clients[step.session.client]!;
      if (client !== undefined && step.session !== undefined) {
        const retry = step.session.retry ? client.last : undefined;
        if (retry !== undefined) {
          command = retry.command;
          origin = retry.origin;
        } else {
          const requestNo = client.next++;
          origin = {
            sessionId: client.sessionId,
            requestNo,
            oldestPending: Math.max(1, requestNo - step.session.lag),
          };
          client.last = { command, origin };
        }
        const before = state;
        const status = requestStatus(state, origin, command);
        if (status.kind !== 'new') {
          // Exactly once: a retry of an applied request gets its original result and changes
          // nothing; a refused one changes nothing either.
          expect(state).toBe(before);
          if (status.kind === 'applied') {
            replays++;
            expect(status.result).toEqual(retry?.result);
          } else expect(status.error).toBeInstanceOf(DomainError);
          continue;
        }
        const session = getSession(state, origin.sessionId);
        if (retry?.result !== undefined) {
          // Forgotten only when the session expired (idle for the TTL) or moved past it.
          expect(session === undefined || session.oldestPending > origin.requestNo).toBe(true);
        }
      }
      const before = state;
      const decision = decide(state, command, ctxOf(step.leased));
      if (!decision.ok) {
        // A refused command changes nothing: same object, same content.
        expect(state).toBe(before);
        expect(decision.error).toBeInstanceOf(DomainError);
        continue;
      }
      event = decision.event;
    } else if (step.kind === 'evict') {
      event = decideEviction(
        state,
        { highWater: step.highWater, lowWater: step.lowWater },
        ctxOf(step.leased),
      );
      if (event === null) continue;
      if (event.op === 'EVICTION')
        for (const key of event.keys) expect(step.leased).not.toContain(key);
    } else {
      epoch++;
      event = { op: 'EPOCH' as const, epoch, nodeId: step.nodeId };
    }
    now += 1;
    const entry = { seq: state.appliedSeq + 1, epoch, ts: now, event };
    const logged: LoggedEvent = origin === undefined ? entry : { ...entry, origin };
    log.push(logged);
    if (draft === undefined) state = fold(state, logged);
    else draft.apply(logged);
    if (origin !== undefined) {
      const client = clients.find((c) => c.sessionId === origin.sessionId);
      if (client?.last?.origin === origin) {
        client.last.result = getSession(state, origin.sessionId)?.results.find(
          (r) => r.requestNo === origin.requestNo,
        );
        expect(client.last.result?.seq).toBe(logged.seq);
      }
    }
    if (check) checkInvariants(state);
  }
  return { log, state: draft?.finish() ?? state, replays };
}

function contents(state: MetadataState): unknown {
  const objects = [...allObjects(state)].sort((a, b) => (a.key < b.key ? -1 : 1));
  return {
    objects,
    segments: [...allSegments(state)],
    sessions: [...allSessions(state)].sort((a, b) => (a.sessionId < b.sessionId ? -1 : 1)),
    scalars: [
      state.appliedSeq,
      state.epoch,
      state.objectCount,
      state.used,
      state.capacity,
      state.sessionCount,
      state.logTime,
      state.sessionsSweptAt,
    ],
  };
}

describe('domain properties', () => {
  it('the generator exercises every event type, retries and session expiry', () => {
    const seen = new Set<string>();
    let replays = 0;
    let expired = 0;
    for (const steps of fc.sample(historyArb, { numRuns: 300, seed: 42 })) {
      const played = play(steps, false);
      replays += played.replays;
      for (const logged of played.log) seen.add(logged.event.op);
      const sessions = new Set(played.log.flatMap((l) => (l.origin ? [l.origin.sessionId] : [])));
      if (played.state.sessionCount < sessions.size) expired++;
    }
    expect(replays).toBeGreaterThan(50);
    expect(expired).toBeGreaterThan(5);
    expect([...seen].sort()).toEqual(
      [
        'EPOCH',
        'EVICTION',
        'MOUNT_SEGMENT',
        'PUT_END',
        'PUT_REVOKE',
        'PUT_START',
        'REMOVE',
        'UNMOUNT_SEGMENT',
      ].sort(),
    );
  }, 300_000);

  it('allocation safety over arbitrary histories (incl. unmount, revoke, remove, eviction)', () => {
    fc.assert(
      fc.property(historyArb, (steps) => {
        play(steps, true);
      }),
      { numRuns: propRuns() },
    );
  }, 300_000);

  it('determinism: one by one, any batch split, through the codec, or on another store: equal states and digests', () => {
    fc.assert(
      fc.property(
        historyArb,
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }),
        (steps, splits) => {
          const { log, state } = play(steps, false);
          const again = play(steps, false).state;
          let batched = emptyState();
          let i = 0;
          let k = 0;
          while (i < log.length) {
            const n = splits[k++ % splits.length]!;
            batched = foldAll(batched, log.slice(i, i + n));
            i += n;
          }
          const viaCodec = foldAll(
            emptyState(),
            decodeBatch(encodeBatch(log.map(toEntry))).map(fromEntry),
          );
          const oneByOne = log.reduce(fold, emptyState());
          const drafted = play(steps, false, new FoldDraft(emptyState()));
          expect(drafted.log).toEqual(log);
          for (const other of [again, batched, viaCodec, oneByOne, drafted.state]) {
            expect(contents(other)).toEqual(contents(state));
            expect(stateDigest(other)).toBe(stateDigest(state));
            expect(other.shardSummaries).toEqual(state.shardSummaries);
          }
          expectSummariesOfRecords(state);
          for (const record of allObjects(state)) {
            const shard = shardOf(record.key);
            expect(shardDigest(batched, shard)).toBe(shardDigest(state, shard));
            expect([...shardObjects(state, shard)]).toContain(record);
          }
        },
      ),
      { numRuns: propRuns() },
    );
  }, 300_000);

  it('folding never changes the state it started from', () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), (steps, cut) => {
        const { log } = play(steps, false);
        const at = log.length === 0 ? 0 : cut % log.length;
        const mid = foldAll(emptyState(), log.slice(0, at));
        const snapshot = JSON.stringify(contents(mid));
        foldAll(mid, log.slice(at));
        expect(JSON.stringify(contents(mid))).toBe(snapshot);
      }),
      { numRuns: propRuns() },
    );
  }, 300_000);
});
