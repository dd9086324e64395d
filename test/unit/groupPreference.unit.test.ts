// Primaries spread over processes: each group prefers one node by rendezvous hashing with
// bounded load, every node computes the same order, and the order depends only on the set of ids.
import { describe, expect, it } from 'vitest';
import {
  preferenceOrder,
  preferenceRank,
  preferredNodes,
  rankCampaignDelay,
} from '../../src/domain/model/groupPreference.ts';

const nodes = ['n1', 'n2', 'n3'];
const counts = (groups: number, ids: readonly string[]): number[] =>
  ids.map((n) => preferredNodes(groups, ids).filter((f) => f === n).length);

describe('group preference (rendezvous hashing, bounded load)', () => {
  it('is the same whatever order the ids come in; each rank appears once per group', () => {
    for (let g = 0; g < 16; g++) {
      const order = preferenceOrder(g, 16, nodes);
      expect(preferenceOrder(g, 16, [...nodes].reverse())).toEqual(order);
      expect(preferenceOrder(g, 16, [...nodes, 'n2'])).toEqual(order);
      expect(nodes.map((n) => preferenceRank(g, 16, n, nodes)).sort()).toEqual([0, 1, 2]);
      // A node's rank among the live members counts itself even when it is not listed yet.
      expect(preferenceRank(g, 16, order[2]!, [])).toBe(0);
    }
  });

  it('each of N nodes is first for floor(G/N) or ceil(G/N) groups: 4 groups on 3 nodes, 1024 on 3, 8 on 2', () => {
    expect(counts(4, nodes).sort()).toEqual([1, 1, 2]);
    expect(counts(1024, nodes).sort()).toEqual([341, 341, 342]);
    expect(counts(8, ['a', 'b'])).toEqual([4, 4]);
    expect(counts(3, ['only'])).toEqual([3]);
  });

  it('a node leaving spreads its groups over the others; coming back, every group prefers what it did before', () => {
    const all = preferredNodes(64, nodes);
    const without = preferredNodes(64, ['n1', 'n3']);
    expect(without).not.toContain('n2');
    expect(counts(64, ['n1', 'n3'])).toEqual([32, 32]);
    expect(preferredNodes(64, ['n3', 'n1', 'n2'])).toEqual(all);
  });

  it('the campaign delay adds one step per place behind the preferred node', () => {
    const order = preferenceOrder(1, 4, nodes);
    expect(order.map((n) => rankCampaignDelay(1, 4, n, nodes, 1000))).toEqual([0, 1000, 2000]);
  });
});
