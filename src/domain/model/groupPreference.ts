/**
 * Which process each group prefers as its primary: rendezvous (highest random weight) hashing
 * of (group, node id) with bounded load. Groups are placed in order, each on the node of
 * highest weight that still has room (every node `floor(G / N)` groups, `G mod N` of them one
 * more), so with `N` processes each is first for `floor(G / N)` or `ceil(G / N)` groups; plain
 * rendezvous hashing often puts 3 of 4 groups on one of 3 nodes. Every node computes the same
 * answer from the same ids.
 */

/** FNV-1a (32 bits) of `text`, finished with a murmur3 mix so near keys spread. */
function weight(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weight of `nodeId` for `group`: higher is preferred. */
export function groupWeight(group: number, nodeId: string): number {
  return weight(`${group}\u0000${nodeId}`);
}

/** The node ids (duplicates dropped) by `group`'s weight, highest first, ties by id. */
function byWeight(group: number, nodeIds: readonly string[]): string[] {
  return [...nodeIds].sort((a, b) => {
    const d = groupWeight(group, b) - groupWeight(group, a);
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
}

/** The preferred node of each of `groups` groups among `nodeIds` (at least one). */
export function preferredNodes(groups: number, nodeIds: Iterable<string>): string[] {
  const ids = [...new Set(nodeIds)].sort();
  if (ids.length === 0) throw new RangeError('no node to prefer');
  // Every node leads `base` groups; `extra` of them one more.
  const base = Math.floor(groups / ids.length);
  let extra = groups % ids.length;
  const load = new Map<string, number>();
  return Array.from({ length: groups }, (_, g) => {
    const room = (id: string): boolean => {
      const n = load.get(id) ?? 0;
      return n < base || (n === base && extra > 0);
    };
    const chosen = byWeight(g, ids).find(room) ?? ids[0]!;
    const n = (load.get(chosen) ?? 0) + 1;
    if (n > base) extra--;
    load.set(chosen, n);
    return chosen;
  });
}

/**
 * The node ids in `group`'s order of preference: its preferred node (see
 * {@link preferredNodes}), then the others by weight.
 */
export function preferenceOrder(
  group: number,
  groups: number,
  nodeIds: Iterable<string>,
): string[] {
  const ids = [...new Set(nodeIds)];
  const first = preferredNodes(groups, ids)[group]!;
  return [
    first,
    ...byWeight(
      group,
      ids.filter((id) => id !== first),
    ),
  ];
}

/** `nodeId`'s place (0 = preferred) in `group`'s order among itself and `memberIds`. */
export function preferenceRank(
  group: number,
  groups: number,
  nodeId: string,
  memberIds: Iterable<string>,
): number {
  return preferenceOrder(group, groups, [nodeId, ...memberIds]).indexOf(nodeId);
}

/**
 * How much longer (ms) `nodeId` waits before campaigning for `group`'s leader key than the node
 * `group` prefers among itself and the live `memberIds`: `stepMs` per place behind it (0 for
 * the preferred one). With `stepMs` at least the longest campaign delay, a preferred node that
 * may campaign always campaigns first.
 */
export function rankCampaignDelay(
  group: number,
  groups: number,
  nodeId: string,
  memberIds: Iterable<string>,
  stepMs: number,
): number {
  return preferenceRank(group, groups, nodeId, memberIds) * stepMs;
}
