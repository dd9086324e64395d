import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/domain/decide/decide.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import { groupOfKey } from '../../src/domain/model/groups.ts';
import { segmentSlice } from '../../src/domain/model/segmentSlices.ts';
import { allObjects, emptyState } from '../../src/domain/model/state.ts';
import type { Command, MetadataState } from '../../src/domain/model/types.ts';
import { noReadLeases } from '../fixtures/runCommands.ts';

// G groups, each mounting its slice of the same segments, each deciding and folding the
// commands of its own keys: whatever the commands, no two replicas of any groups share a byte,
// and every replica lies in its group's slice.

function apply(state: MetadataState, command: Command): MetadataState {
  const d = decide(state, command, noReadLeases);
  return d.ok ? fold(state, { seq: state.appliedSeq + 1, epoch: 1, ts: 0, event: d.event }) : state;
}

const commandArb = fc.oneof(
  fc.record({
    type: fc.constant('putStart' as const),
    key: fc.nat(40).map((k) => `k${k}`),
    size: fc.integer({ min: 1, max: 300 }),
    replicaNum: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    type: fc.constantFrom('putEnd' as const, 'putRevoke' as const, 'remove' as const),
    key: fc.nat(40).map((k) => `k${k}`),
  }),
);

describe('groups sharing segments by slices', () => {
  it('never place two replicas on one byte, and keep each in its group slice', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.integer({ min: 8, max: 4000 }), { minLength: 3, maxLength: 5 }),
        fc.array(commandArb, { maxLength: 120 }),
        (groups, sizes, commands) => {
          let states = Array.from({ length: groups }, () => emptyState());
          sizes.forEach((size, n) => {
            states = states.map((state, g) =>
              apply(state, {
                type: 'mountSegment',
                segmentId: `seg${n}`,
                nodeId: `node${n}`,
                ...segmentSlice(size, g, groups),
              }),
            );
          });
          for (const command of commands) {
            const g = groupOfKey(command.key, groups);
            states[g] = apply(states[g] as MetadataState, command);
          }
          const taken = new Map<string, [number, number][]>();
          states.forEach((state, g) => {
            for (const object of allObjects(state)) {
              for (const r of object.replicas) {
                const size = sizes[Number(r.segmentId.slice(3))] as number;
                const slice = segmentSlice(size, g, groups);
                expect(r.offset).toBeGreaterThanOrEqual(slice.base);
                expect(r.offset + r.length).toBeLessThanOrEqual(slice.base + slice.size);
                const list = taken.get(r.segmentId) ?? [];
                list.push([r.offset, r.offset + r.length]);
                taken.set(r.segmentId, list);
              }
            }
          });
          for (const list of taken.values()) {
            list.sort((a, b) => a[0] - b[0]);
            for (let i = 1; i < list.length; i++)
              expect(list[i]![0]).toBeGreaterThanOrEqual(list[i - 1]![1]);
          }
          // The capacity of all groups is the mounted bytes, counted once.
          const capacity = states.reduce((sum, s) => sum + s.capacity, 0);
          expect(capacity).toBe(sizes.reduce((a, b) => a + b, 0));
        },
      ),
      { numRuns: 300 },
    );
  });
});
