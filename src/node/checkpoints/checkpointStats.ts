import type { CheckpointInfo } from '../../ports/checkpointStore.ts';
import type { StreamTailLost } from '../streamTail.ts';

/** What the checkpoint machinery did; `/status`, `/metrics` and the logs show it. */
export interface CheckpointStats {
  /** Checkpoints this node wrote and published. */
  written: number;
  /** Writes that failed (store error, or the read-back did not match). */
  failed: number;
  /** Checkpoints found corrupt while loading or verifying. */
  corrupt: number;
  /** The last corrupt checkpoint and what was wrong with it. */
  lastCorrupt: string | undefined;
  /** Time the last write took, from freezing the state to publishing (ms). */
  lastWriteMs: number;
  /** Size of the last checkpoint this node wrote (bytes). */
  lastWriteBytes: number;
  /** The newest checkpoint this node knows of (listed, written or loaded). */
  newest: CheckpointInfo | undefined;
  /** The checkpoint this node started from, if any. */
  loadedFrom: string | undefined;
  /** Why this node refuses to become eligible; undefined when it does not. */
  failClosed: string | undefined;
  /** Set while it refuses because a checkpoint is past the stream's end (see streamTail.ts). */
  streamTailLost: StreamTailLost | undefined;
}

export function emptyCheckpointStats(): CheckpointStats {
  return {
    written: 0,
    failed: 0,
    corrupt: 0,
    lastCorrupt: undefined,
    lastWriteMs: 0,
    lastWriteBytes: 0,
    newest: undefined,
    loadedFrom: undefined,
    failClosed: undefined,
    streamTailLost: undefined,
  };
}
