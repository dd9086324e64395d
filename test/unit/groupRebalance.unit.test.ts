// A group's primary moves to the process the group prefers by planned switchover: back to a
// process that returns, never away from a healthy primary because another process died.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { preferredNodes } from '../../src/domain/model/groupPreference.ts';
import type { MemberRecord } from '../../src/ports/elector.ts';
import { keepPreferredPrimary } from '../../src/process/groupRebalance.ts';

const GROUPS = 4;
const IDS = ['n1', 'n2', 'n3'];

const member = (nodeId: string, role: string): MemberRecord => ({
  nodeId,
  role,
  epoch: 1,
  appliedSeq: 10,
  address: `http://${nodeId}`,
  updatedAt: 0,
});

/**
 * Group `group`'s member on `nodeId`, serving as its primary, and the switchovers it asks for;
 * `live` gives the live members' ids, the others' role standby unless in `starting`.
 */
function primaryOf(
  group: number,
  nodeId: string,
  live: () => readonly string[],
  starting: ReadonlySet<string> = new Set(),
) {
  const switchedTo: string[] = [];
  const stop = keepPreferredPrimary({
    group,
    groups: GROUPS,
    nodeId,
    runtime: {
      role: 'primary',
      serving: true,
      switchover: (target?: string) => {
        switchedTo.push(target ?? '');
        return Promise.reject(new Error('not in this test'));
      },
    },
    elector: {
      members: () =>
        Promise.resolve(
          live().map((id) =>
            member(id, id === nodeId ? 'primary' : starting.has(id) ? 'starting' : 'standby'),
          ),
        ),
    },
    log: pino({ level: 'silent' }),
    intervalMs: 100,
    backoffMs: 100,
  });
  return { switchedTo, stop };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('keepPreferredPrimary', () => {
  it('a healthy primary on its preferred process stays when another process dies (the placement among the survivors shifts)', async () => {
    // The placement balances load: with n1 gone, group 2 would prefer n2 over n3, where it is.
    expect(preferredNodes(GROUPS, IDS)).toEqual(['n1', 'n1', 'n3', 'n2']);
    expect(preferredNodes(GROUPS, ['n2', 'n3'])[2]).toBe('n2');
    let live = IDS;
    const g2 = primaryOf(2, 'n3', () => live);
    await vi.advanceTimersByTimeAsync(500);
    live = ['n2', 'n3'];
    await vi.advanceTimersByTimeAsync(2000);
    g2.stop();
    expect(g2.switchedTo).toEqual([]);
  });

  it('a group that failed over stays on a survivor while its process is down and goes back to it when it returns', async () => {
    let live = IDS;
    const starting = new Set(['n1']);
    const g0 = primaryOf(0, 'n2', () => live, starting);
    // n1 is seen but not yet a standby of group 0 (still starting), then dies: nothing moves.
    await vi.advanceTimersByTimeAsync(150);
    expect(g0.switchedTo).toEqual([]);
    live = ['n2', 'n3'];
    await vi.advanceTimersByTimeAsync(2000);
    expect(g0.switchedTo).toEqual([]);
    live = IDS;
    starting.clear();
    await vi.advanceTimersByTimeAsync(150);
    g0.stop();
    expect(g0.switchedTo[0]).toBe('n1');
  });

  it('after a start where one process won every group, each group goes to the process it prefers once that one is seen', async () => {
    let live = ['n1'];
    const g3 = primaryOf(3, 'n1', () => live);
    await vi.advanceTimersByTimeAsync(500);
    expect(g3.switchedTo).toEqual([]);
    live = IDS;
    await vi.advanceTimersByTimeAsync(150);
    g3.stop();
    expect(g3.switchedTo[0]).toBe('n2');
  });
});
