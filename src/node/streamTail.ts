/**
 * A stream that lost its tail: a checkpoint newer than the stream's end is proof that the
 * stream lost acknowledged entries (a power loss of the JetStream server, a restore of an
 * older copy). A node that finds one fails closed before anything else (before campaigning,
 * before a full sync from others) instead of going on from an older checkpoint and answering
 * `OBJECT_NOT_FOUND` for keys that were acknowledged; {@link acceptTailLoss} is the operator's
 * way on from the newest checkpoint.
 */
import { loadCheckpoint } from './checkpoints/loadCheckpoint.ts';
import type { Replication } from './nodeDomain.ts';
import { FailClosedError } from './checkpoints/restoreWithoutPrimary.ts';
import type { CheckpointInfo, CheckpointStore } from '../ports/checkpointStore.ts';
import type { Clock } from '../ports/clock.ts';
import type { LogBounds, OpLog } from '../ports/opLog.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** What a node found: the newest checkpoint past the stream's end, and where the stream ends. */
export interface StreamTailLost {
  /** The newest checkpoint past the stream's end. */
  readonly checkpoint: string;
  /** Its last entry (S). */
  readonly checkpointSeq: number;
  /** The stream message that held entry S when it was written. */
  readonly checkpointStreamSeq: number;
  /** The stream's last entry now (0 when it holds none). */
  readonly streamLastSeq: number;
  /** The stream's last sequence now. */
  readonly streamLastStreamSeq: number;
}

/**
 * Whether checkpoint `info` is past the end of a stream with `bounds`: the stream's last
 * sequence is below the message that held the checkpoint's last entry (the stream lost
 * messages and its sequence went back, as after a power loss), or the stream still holds
 * entries and its last one is older than the checkpoint's (the messages after it were deleted).
 * A stream only grows, and retention never removes a checkpoint's message or anything after
 * it: either is proof that entries the cluster acknowledged are gone from the stream.
 */
export function pastStreamEnd(bounds: LogBounds, info: CheckpointInfo): boolean {
  if (info.lastStreamSeq > bounds.lastStreamSeq) return true;
  return bounds.firstSeq !== 0 && info.appliedSeq > bounds.lastSeq;
}

/**
 * The newest of `listed` (newest first) past the end of a stream with `bounds`, or undefined.
 * `listed` must have been read before `bounds`: a checkpoint written after the bounds were
 * read would otherwise look past their end.
 */
export function findTailLoss(
  listed: readonly CheckpointInfo[],
  bounds: LogBounds,
): StreamTailLost | undefined {
  const info = listed.find((c) => pastStreamEnd(bounds, c));
  if (info === undefined) return undefined;
  return {
    checkpoint: info.name,
    checkpointSeq: info.appliedSeq,
    checkpointStreamSeq: info.lastStreamSeq,
    streamLastSeq: bounds.lastSeq,
    streamLastStreamSeq: bounds.lastStreamSeq,
  };
}

/** The command that accepts the loss, as the operator types it. */
export function acceptLossCommand(checkpointSeq: number): string {
  return `understudy checkpoint accept-loss --seq ${checkpointSeq}`;
}

/**
 * The node fails closed because the stream lost its tail ({@link StreamTailLost}): it
 * neither serves nor campaigns nor full-syncs from others until an operator restores the
 * stream or accepts the loss ({@link acceptTailLoss}). Retryable: the node keeps checking.
 */
export class StreamTailLostError extends FailClosedError {
  override readonly name = 'StreamTailLostError';
  override readonly code = 'STREAM_TAIL_LOST';
  constructor(readonly loss: StreamTailLost) {
    const stream =
      loss.streamLastSeq === 0
        ? `the stream holds no entries (its last sequence is ${loss.streamLastStreamSeq})`
        : `the stream ends at entry ${loss.streamLastSeq} (stream seq ${loss.streamLastStreamSeq})`;
    super(
      `checkpoint ${loss.checkpoint} holds entries to seq ${loss.checkpointSeq} (stream seq ` +
        `${loss.checkpointStreamSeq}) but ${stream}: acknowledged entries were lost from the ` +
        `stream. Restore the stream, or accept the loss and go on from the newest checkpoint: ` +
        acceptLossCommand(loss.checkpointSeq),
    );
  }
}

/**
 * Throws {@link StreamTailLostError} when a checkpoint is past the stream's end. Lists the
 * checkpoints first, then reads the stream's bounds (see {@link findTailLoss}).
 */
export async function checkStreamTail(deps: {
  readonly opLog: Pick<OpLog, 'bounds'>;
  readonly checkpoints?: Pick<CheckpointStore, 'list'> | undefined;
}): Promise<void> {
  if (deps.checkpoints === undefined) return;
  const listed = await deps.checkpoints.list();
  if (listed.length === 0) return;
  const loss = findTailLoss(listed, await deps.opLog.bounds());
  if (loss !== undefined) throw new StreamTailLostError(loss);
}

/** Why {@link acceptTailLoss} refused; nothing was changed. */
export class AcceptLossRefusedError extends UnderstudyError {
  override readonly name = 'AcceptLossRefusedError';
  readonly code = 'ACCEPT_LOSS_REFUSED';
  constructor(
    readonly reason: 'noLoss' | 'notNewest' | 'unreadable',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What {@link acceptTailLoss} did. */
export interface AcceptedLoss {
  /** The checkpoint the cluster goes on from (the newest). */
  readonly checkpoint: CheckpointInfo;
  /** What was lost, as the nodes saw it. */
  readonly loss: StreamTailLost;
  /** Older checkpoints past the stream's end, removed. */
  readonly removed: readonly string[];
}

/**
 * Accepts the loss of the stream's tail and makes the stream continue the newest checkpoint,
 * whose appliedSeq must be `seq` (the operator names what they accept). The stream's entries
 * are all older than that checkpoint (it is past their end), so nothing it does not hold is
 * dropped; what was acknowledged after it is lost, which is what the operator accepts.
 *
 * Steps, each safe to repeat after a failure (the nodes stay closed until the last one):
 * reads the checkpoint back (chunk CRCs and digest); removes the older checkpoints that are
 * past the stream's end too; records in the checkpoint's metadata that the stream continues it
 * after the stream's last message (the stream's last sequence X, where the next primary
 * fences on); empties the stream (every message through X). The nodes then load the
 * checkpoint, and the next primary writes entry S+1 at stream seq X+1.
 *
 * Run only while no node serves (the CLI checks the leader key). Rejects with
 * {@link AcceptLossRefusedError} when there is no loss, `seq` is not the newest checkpoint's,
 * or that checkpoint does not read back.
 */
export async function acceptTailLoss(
  deps: {
    /** Its `trimThrough` is required (a log without it cannot be emptied). */
    readonly opLog: Pick<OpLog, 'bounds' | 'trimThrough'>;
    readonly checkpoints: CheckpointStore;
    readonly clock: Clock;
    /** Reads a checkpoint back (the domain's `Replication.readCheckpoint`). */
    readonly readCheckpoint: Replication<unknown>['readCheckpoint'];
  },
  seq: number,
): Promise<AcceptedLoss> {
  const { opLog, checkpoints, clock, readCheckpoint } = deps;
  if (opLog.trimThrough === undefined)
    throw new TypeError('acceptTailLoss: the log has no trimThrough');
  const listed = await checkpoints.list();
  const bounds = await opLog.bounds();
  const loss = findTailLoss(listed, bounds);
  if (loss === undefined)
    throw new AcceptLossRefusedError(
      'noLoss',
      `no checkpoint is past the stream's end (last sequence ${bounds.lastStreamSeq}, last entry ${bounds.lastSeq}): there is no loss to accept`,
    );
  const newest = listed[0] as CheckpointInfo;
  if (newest.appliedSeq !== seq)
    throw new AcceptLossRefusedError(
      'notNewest',
      `the newest checkpoint is at seq ${newest.appliedSeq} (${newest.name}), not ${seq}: the cluster can only go on from the newest`,
    );
  try {
    await loadCheckpoint(checkpoints, newest, clock, readCheckpoint);
  } catch (err) {
    throw new AcceptLossRefusedError(
      'unreadable',
      `checkpoint ${newest.name} does not read back (${String(err)}); nothing was changed`,
      { cause: err },
    );
  }
  const removed: string[] = [];
  for (const info of listed.slice(1)) {
    if (info.lastStreamSeq <= bounds.lastStreamSeq) continue;
    await checkpoints.remove(info.name);
    removed.push(info.name);
  }
  const checkpoint = await checkpoints.rebase(newest.name, bounds.lastStreamSeq);
  if (bounds.lastStreamSeq > 0) await opLog.trimThrough(bounds.lastStreamSeq);
  return { checkpoint, loss, removed };
}
