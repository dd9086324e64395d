import { assertGroupCount } from './groups.ts';

/**
 * How the groups of a cluster share a segment: group g of G allocates only from its own slice
 * `[base, base + size)` of every segment, so replicas of different groups never overlap and no
 * write needs a second group (no cross-group transaction). The slices of the G groups are
 * contiguous, disjoint and together cover the whole segment; their sizes differ by at most one
 * byte. With one group the slice is the whole segment at base 0: exactly a mount of before.
 */
export interface SegmentSlice {
  /** The first byte of the slice (an offset into the segment). */
  readonly base: number;
  /** The slice's length in bytes. */
  readonly size: number;
}

/**
 * The slice of a segment of `segmentSize` bytes that group `group` of `groups` allocates from:
 * `[floor(g*S/G), floor((g+1)*S/G))`. Throws RangeError for a bad group count or group, and when
 * the segment has fewer bytes than there are groups (some slice would be empty).
 */
export function segmentSlice(segmentSize: number, group: number, groups: number): SegmentSlice {
  assertGroupCount(groups);
  if (!Number.isSafeInteger(group) || group < 0 || group >= groups) {
    throw new RangeError(`group ${group} is not one of 0..${groups - 1}`);
  }
  if (!Number.isSafeInteger(segmentSize) || segmentSize < groups) {
    throw new RangeError(
      `a segment shared by ${groups} groups needs at least ${groups} bytes, not ${segmentSize}`,
    );
  }
  const base = sliceStart(segmentSize, group, groups);
  return { base, size: sliceStart(segmentSize, group + 1, groups) - base };
}

/** floor(g * S / G) without overflowing a safe integer (S <= 2^53, G <= 1024). */
function sliceStart(segmentSize: number, group: number, groups: number): number {
  const quotient = Math.floor(segmentSize / groups);
  const remainder = segmentSize - quotient * groups;
  return group * quotient + Math.floor((group * remainder) / groups);
}
