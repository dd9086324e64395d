import { digestHex, stateDigest } from '../../domain/log/checksum.ts';
import { allSegments } from '../../domain/model/state.ts';
import type { MetadataState } from '../../domain/model/types.ts';

/** A state at one seq, summarised. */
export interface StateSummary {
  readonly seq: number;
  /** The time of the entry at `seq` (ISO), null for the empty state. */
  readonly time: string | null;
  readonly epoch: number;
  readonly epochNodeId: string;
  readonly objectCount: number;
  readonly capacity: number;
  readonly used: number;
  readonly segments: readonly {
    readonly id: string;
    readonly nodeId: string;
    readonly size: number;
    readonly used: number;
  }[];
  /** `stateDigest` in hex ({@link digestHex}), as a node's `/status?digest` reports it. */
  readonly digest: string;
  /** True when bad entries were skipped before `seq`: the state is a best effort. */
  readonly approximate: boolean;
}

/** The summary of `state` (the entry at its seq was written at `ts`). */
export function summarizeState(
  state: MetadataState,
  ts: number | undefined,
  approximate = false,
): StateSummary {
  return {
    seq: state.appliedSeq,
    time: ts === undefined ? null : new Date(ts).toISOString(),
    epoch: state.epoch,
    epochNodeId: state.epochNodeId,
    objectCount: state.objectCount,
    capacity: state.capacity,
    used: state.used,
    segments: [...allSegments(state)].map((s) => ({
      id: s.id,
      nodeId: s.nodeId,
      size: s.size,
      used: s.used,
    })),
    digest: digestHex(stateDigest(state)),
    approximate,
  };
}
