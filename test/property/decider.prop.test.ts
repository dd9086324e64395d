import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { metadataDecider } from '../../src/domain/decider.ts';
import { decide, type DecideContext } from '../../src/domain/decide/decide.ts';
import { fold, FoldDraft, foldAll } from '../../src/domain/fold/fold.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import { SESSION_TTL_MS } from '../../src/domain/model/limits.ts';
import { allObjects, allSegments, allSessions, emptyState } from '../../src/domain/model/state.ts';
import type { Command, LoggedEvent, MetadataState } from '../../src/domain/model/types.ts';
import { propRuns } from './runs.ts';

// metadataDecider is the domain as one value; these properties pin that it is the same domain
// as the functions the node used before it: decide.ts to decide, the fold to evolve.

type Step =
  | {
      readonly kind: 'command';
      readonly command: Command;
      readonly leased: readonly string[];
      readonly client?: number;
    }
  | { readonly kind: 'time'; readonly ms: number }
  | { readonly kind: 'epoch'; readonly nodeId: string };

const keys = ['a', 'b', 'c', 'd', 'ключ'];
const keyArb = fc.constantFrom(...keys);
const segmentArb = fc.constantFrom('s0', 's1', 's2');
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('mountSegment' as const),
      segmentId: segmentArb,
      nodeId: fc.constantFrom('n0', 'n1', 'n2'),
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
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record(
      {
        kind: fc.constant('command' as const),
        command: commandArb,
        leased: fc.subarray(keys, { maxLength: 2 }),
        client: fc.nat(2),
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
      kind: fc.constant('epoch' as const),
      nodeId: fc.constantFrom('n0', 'n1'),
    }),
  },
);

/** A history: two segments mounted first (so puts find room), then up to 80 generated steps. */
const historyArb: fc.Arbitrary<Step[]> = fc
  .array(stepArb, { minLength: 1, maxLength: 80, size: 'max' })
  .map((steps) => [
    ...['0', '1'].map((n): Step => ({
      kind: 'command',
      command: { type: 'mountSegment', segmentId: `s${n}`, nodeId: `n${n}`, size: 300 },
      leased: [],
    })),
    ...steps,
  ]);

/**
 * Everything a state holds, as plain lists (toEqual over the state itself walks every empty
 * bucket of every shard, several times slower).
 */
function contents(state: MetadataState): unknown {
  const { shards: _shards, segments: _segments, sessions: _sessions, ...rest } = state;
  return {
    ...rest,
    segments: [...allSegments(state)],
    objects: [...allObjects(state)],
    sessions: [...allSessions(state)],
  };
}

function leasing(leased: readonly string[]): DecideContext {
  return { isReadLeased: (key) => leased.includes(key) };
}

/**
 * Plays `steps` through metadataDecider alone (decide, then evolve what it accepted), and
 * beside it through the functions the node used directly (decide.ts and fold): every decision
 * must be the same. Returns the log and both final states.
 */
function play(steps: readonly Step[]): {
  log: LoggedEvent[];
  viaDecider: MetadataState;
  viaFold: MetadataState;
} {
  let viaDecider = metadataDecider.initialState();
  let viaFold = emptyState();
  let epoch = 0;
  let now = 1_700_000_000_000;
  const next = [1, 1, 1];
  const log: LoggedEvent[] = [];
  const append = (logged: LoggedEvent): void => {
    log.push(logged);
    viaDecider = metadataDecider.evolve(viaDecider, logged);
    viaFold = fold(viaFold, logged);
  };
  for (const step of steps) {
    now += 1;
    if (step.kind === 'time') {
      now += step.ms;
    } else if (step.kind === 'epoch') {
      epoch += 1;
      const event = { op: 'EPOCH' as const, epoch, nodeId: step.nodeId };
      append({ seq: log.length + 1, epoch, ts: now, event });
    } else {
      const ctx = leasing(step.leased);
      const decision = metadataDecider.decide(step.command, viaDecider, ctx);
      expect(decision).toEqual(decide(viaFold, step.command, ctx));
      if (!decision.ok) continue;
      const client = step.client;
      const logged: LoggedEvent = { seq: log.length + 1, epoch, ts: now, event: decision.event };
      if (client === undefined) append(logged);
      else {
        const requestNo = next[client]!++;
        const sessionId = `${client}`.repeat(32);
        append({ ...logged, origin: { sessionId, requestNo, oldestPending: requestNo } });
      }
    }
  }
  return { log, viaDecider, viaFold };
}

describe('metadataDecider', () => {
  it('initialState is the empty state', () => {
    expect(metadataDecider.initialState()).toBe(emptyState());
  });

  it('decides and evolves exactly as decide.ts and the fold do, on every path the node takes', () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), (steps, cut) => {
        const { log, viaDecider, viaFold } = play(steps);
        expect(contents(viaDecider)).toEqual(contents(viaFold));
        expect(stateDigest(viaDecider)).toBe(stateDigest(viaFold));
        // The standby's path: entries through the codec, folded in two batches.
        const delivered = log.map((logged) => fromEntry(toEntry(logged)));
        const at = log.length === 0 ? 0 : cut % (log.length + 1);
        const standby = metadataDecider.evolveAll(
          metadataDecider.evolveAll(metadataDecider.initialState(), delivered.slice(0, at)),
          delivered.slice(at),
        );
        expect(contents(standby)).toEqual(contents(foldAll(emptyState(), log)));
        expect(stateDigest(standby)).toBe(stateDigest(viaFold));
        // The primary's path: one draft for the whole log, frozen once.
        const draft = metadataDecider.draft(metadataDecider.initialState());
        expect(draft).toBeInstanceOf(FoldDraft);
        for (const logged of log) draft.apply(logged);
        const drafted = draft.finish();
        expect(contents(drafted)).toEqual(contents(viaFold));
        expect(stateDigest(drafted)).toBe(stateDigest(viaFold));
      }),
      { numRuns: propRuns(200) },
    );
  }, 300_000);

  it('evolve refuses an event out of sequence and leaves the state unchanged', () => {
    const state = metadataDecider.initialState();
    const event = { op: 'EPOCH' as const, epoch: 1, nodeId: 'n0' };
    expect(() => metadataDecider.evolve(state, { seq: 2, epoch: 1, ts: 1, event })).toThrow(
      /cannot fold seq 2 \(expected 1\): out of sequence/,
    );
    expect(state).toBe(emptyState());
    expect(state.appliedSeq).toBe(0);
  });
});
