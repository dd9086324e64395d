// Read leases on a simulated clock: what `get` grants, and what a promotion leases.
import { describe, expect, it } from 'vitest';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { decide } from '../../src/domain/decide/decide.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { Command, MetadataState } from '../../src/domain/model/types.ts';
import { metadataReadLeases } from '../fixtures/metadataNode.ts';
import { runCommands } from '../fixtures/runCommands.ts';

const TTL = 2000;

const run = (state: MetadataState, commands: readonly Command[]): MetadataState =>
  runCommands(state, commands, { ts: 1000 });

const put = (key: string): Command[] => [
  { type: 'putStart', key, size: 10, replicaNum: 1 },
  { type: 'putEnd', key },
];

describe('read leases', () => {
  it('a get leases its key for one TTL', () => {
    const clock = new SimClock(1000);
    const leases = metadataReadLeases(clock, TTL);
    expect(leases.grant('k')).toBe(1000 + TTL);
    expect(leases.isReadLeased('k')).toBe(true);
    expect(leases.isReadLeased('other')).toBe(false);
    clock.advance(TTL);
    expect(leases.isReadLeased('k')).toBe(false);
  });

  it('a promotion leases every object of the state it promoted from for one TTL, and no object created after it', () => {
    const clock = new SimClock(1000);
    const leases = metadataReadLeases(clock, TTL);
    const before = run(emptyState(), [
      { type: 'mountSegment', segmentId: 's', nodeId: 'n', size: 1000 },
      ...put('old'),
    ]);
    leases.leaseAll(before);
    const after = run(before, put('new'));
    expect(after.objectCount).toBe(2);
    expect(leases.isReadLeased('old')).toBe(true);
    expect(leases.isReadLeased('new')).toBe(false);
    // A remove of the new object is decided against the leases: allowed; of the old one: LEASED.
    const ctx = { isReadLeased: leases.isReadLeased };
    expect(decide(after, { type: 'remove', key: 'new' }, ctx).ok).toBe(true);
    const refused = decide(after, { type: 'remove', key: 'old' }, ctx);
    expect(refused.ok ? undefined : refused.error.code).toBe('LEASED');
    clock.advance(TTL - 1);
    expect(leases.isReadLeased('old')).toBe(true);
    clock.advance(1);
    expect(leases.isReadLeased('old')).toBe(false);
    expect(decide(after, { type: 'remove', key: 'old' }, ctx).ok).toBe(true);
  });

  it('a get after a promotion leases a new object too; clear ends every lease', () => {
    const clock = new SimClock(0);
    const leases = metadataReadLeases(clock, TTL);
    leases.leaseAll(emptyState());
    leases.grant('new');
    expect(leases.isReadLeased('new')).toBe(true);
    leases.clear();
    expect(leases.isReadLeased('new')).toBe(false);
  });
});
