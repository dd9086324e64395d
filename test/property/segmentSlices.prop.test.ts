import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_SEGMENT_SIZE } from '../../src/domain/model/limits.ts';
import { MAX_GROUPS } from '../../src/domain/model/groups.ts';
import { segmentSlice } from '../../src/domain/model/segmentSlices.ts';

describe('segmentSlice', () => {
  it('the slices of all groups are disjoint, contiguous, non-empty and cover the segment', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_GROUPS }),
        fc.integer({ min: 1, max: MAX_SEGMENT_SIZE }),
        (groups, wanted) => {
          const size = Math.max(groups, wanted);
          let next = 0;
          let smallest = Infinity;
          let largest = 0;
          for (let g = 0; g < groups; g++) {
            const slice = segmentSlice(size, g, groups);
            expect(slice.base).toBe(next); // no gap, no overlap
            expect(slice.size).toBeGreaterThan(0);
            smallest = Math.min(smallest, slice.size);
            largest = Math.max(largest, slice.size);
            next = slice.base + slice.size;
          }
          expect(next).toBe(size); // covers the segment
          expect(largest - smallest).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('one group gets the whole segment at 0', () => {
    expect(segmentSlice(1 << 30, 0, 1)).toEqual({ base: 0, size: 1 << 30 });
  });

  it('refuses a segment smaller than the group count and a group out of range', () => {
    expect(() => segmentSlice(3, 0, 4)).toThrow(/at least 4 bytes/);
    expect(() => segmentSlice(100, 4, 4)).toThrow(/not one of 0..3/);
    expect(() => segmentSlice(100, 0, 0)).toThrow(RangeError);
  });
});
