import { allocateInPlace, releaseInPlace } from '../decide/allocator.ts';
import type { Replica, Segment } from '../model/types.ts';
import type { WorkingState } from './workingState.ts';

// How a replica takes and gives back its range of a segment: the fold checks, through the
// allocator, that the range the event names is free (or allocated), and keeps `used` (the
// segment's and the state's) in step.

/**
 * Takes the replica's range out of its segment's free list; refuses a range not free. Returns
 * the segment, whose own id strings the state's replica names it with.
 */
export function allocateReplica(working: WorkingState, replica: Replica): Segment {
  const segment = working.mutableSegment(replica.segmentId);
  if (segment === undefined) working.fail(`replica on unmounted segment ${replica.segmentId}`);
  if (segment.nodeId !== replica.nodeId)
    working.fail(`segment ${segment.id} is not on node ${replica.nodeId}`);
  if (!allocateInPlace(segment.free, replica.offset, replica.length)) {
    working.fail(`range ${replica.offset}+${replica.length} of segment ${segment.id} is not free`);
  }
  segment.used += replica.length;
  working.root.used += replica.length;
  return segment;
}

/** Gives the replica's range back to its segment's free list; refuses a range not allocated. */
export function releaseReplica(working: WorkingState, replica: Replica): void {
  const segment = working.mutableSegment(replica.segmentId);
  if (segment === undefined) working.fail(`replica on unmounted segment ${replica.segmentId}`);
  if (!releaseInPlace(segment.free, segment.size, replica.offset, replica.length, segment.base)) {
    working.fail(
      `range ${replica.offset}+${replica.length} of segment ${segment.id} is not allocated`,
    );
  }
  segment.used -= replica.length;
  working.root.used -= replica.length;
}
