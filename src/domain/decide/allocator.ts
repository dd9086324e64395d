import { allSegments } from '../model/state.ts';
import type { FreeRange, MetadataState, Replica } from '../model/types.ts';

/**
 * Finds the lowest offset of a free range that holds `length` bytes (first fit), or undefined.
 */
export function firstFit(free: readonly FreeRange[], length: number): number | undefined {
  for (const range of free) if (range.length >= length) return range.offset;
  return undefined;
}

/** Index of the last free range whose offset is <= `offset`, or -1. */
function floorIndex(free: readonly FreeRange[], offset: number): number {
  let lo = 0;
  let hi = free.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const range = free[mid];
    if (range !== undefined && range.offset <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * Allocates `[offset, offset + length)` in the free list `free` (mutated). False, and `free`
 * unchanged, when that range is not wholly free.
 */
export function allocateInPlace(free: FreeRange[], offset: number, length: number): boolean {
  const i = floorIndex(free, offset);
  const range = free[i];
  if (range === undefined || length <= 0 || offset + length > range.offset + range.length)
    return false;
  const pieces: FreeRange[] = [];
  if (offset > range.offset) pieces.push({ offset: range.offset, length: offset - range.offset });
  const tail = range.offset + range.length - (offset + length);
  if (tail > 0) pieces.push({ offset: offset + length, length: tail });
  free.splice(i, 1, ...pieces);
  return true;
}

/**
 * Releases `[offset, offset + length)` into the free list `free` (mutated), merging it with
 * its neighbours. False, and `free` unchanged, when any of it is already free or it lies
 * outside `[base, base + size)`.
 */
export function releaseInPlace(
  free: FreeRange[],
  size: number,
  offset: number,
  length: number,
  base = 0,
): boolean {
  if (offset < base || length <= 0 || offset + length > base + size) return false;
  const i = floorIndex(free, offset);
  const before = free[i];
  const after = free[i + 1];
  if (before !== undefined && before.offset + before.length > offset) return false;
  if (after !== undefined && offset + length > after.offset) return false;
  let start = offset;
  let end = offset + length;
  let from = i + 1;
  let to = i + 1;
  if (before !== undefined && before.offset + before.length === offset) {
    start = before.offset;
    from = i;
  }
  if (after !== undefined && after.offset === end) {
    end = after.offset + after.length;
    to = i + 2;
  }
  free.splice(from, to - from, { offset: start, length: end - start });
  return true;
}

/** A new free list with `[offset, offset + length)` allocated, or undefined when not wholly free. */
export function allocate(
  free: readonly FreeRange[],
  offset: number,
  length: number,
): FreeRange[] | undefined {
  const copy = [...free];
  return allocateInPlace(copy, offset, length) ? copy : undefined;
}

/** A new free list with `[offset, offset + length)` released, or undefined (see releaseInPlace). */
export function release(
  free: readonly FreeRange[],
  size: number,
  offset: number,
  length: number,
  base = 0,
): FreeRange[] | undefined {
  const copy = [...free];
  return releaseInPlace(copy, size, offset, length, base) ? copy : undefined;
}

export type Placement =
  | { readonly ok: true; readonly replicas: readonly Replica[] }
  | {
      readonly ok: false;
      readonly reason: 'NOT_ENOUGH_NODES' | 'NO_SPACE';
      readonly nodesWithRoom: number;
    };

/**
 * Chooses where the `replicaNum` replicas of an object of `size` bytes go.
 *
 * Policy: walk the mounted segments in mount order (the order their MOUNT_SEGMENT events
 * were folded, identical on every node); for each segment whose node holds no replica of
 * this object yet, take the first free range that fits (first fit, lowest offset) until
 * `replicaNum` replicas sit on distinct storage nodes. The result depends only on the state,
 * so it is deterministic. When fewer than `replicaNum` distinct nodes have any free byte the
 * answer is NOT_ENOUGH_NODES; when enough nodes have room but not a range that fits, NO_SPACE.
 * Every replica is `processing` with `length = size`.
 */
export function place(state: MetadataState, size: number, replicaNum: number): Placement {
  const replicas: Replica[] = [];
  const usedNodes = new Set<string>();
  const nodesWithRoom = new Set<string>();
  for (const segment of allSegments(state)) {
    if (segment.used < segment.size) nodesWithRoom.add(segment.nodeId);
    if (replicas.length === replicaNum || usedNodes.has(segment.nodeId)) continue;
    const offset = firstFit(segment.free, size);
    if (offset === undefined) continue;
    usedNodes.add(segment.nodeId);
    replicas.push({
      segmentId: segment.id,
      nodeId: segment.nodeId,
      offset,
      length: size,
      status: 'processing',
    });
  }
  if (replicas.length === replicaNum) return { ok: true, replicas };
  if (nodesWithRoom.size < replicaNum) {
    return { ok: false, reason: 'NOT_ENOUGH_NODES', nodesWithRoom: nodesWithRoom.size };
  }
  return { ok: false, reason: 'NO_SPACE', nodesWithRoom: nodesWithRoom.size };
}
