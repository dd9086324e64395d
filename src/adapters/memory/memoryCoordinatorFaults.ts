import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** A call from a partitioned node: the coordinator cannot be reached. Retryable. */
export class CoordinatorUnavailableError extends UnderstudyError {
  override readonly name = 'CoordinatorUnavailableError';
  readonly code = 'COORDINATOR_UNAVAILABLE';
  override readonly retryable = true;
  constructor(
    readonly nodeId: string,
    readonly operation: string,
    options?: ErrorOptions,
  ) {
    super(`${operation} from ${nodeId}: the coordinator is unreachable`, options);
  }
}

/**
 * What becomes of the answer to a call a node makes (the call itself reaches the coordinator
 * and takes effect): delivered, lost (the caller's call fails after its timeout, as an etcd
 * call whose answer never came), or late by `ms`.
 */
export type CoordinatorReplyFate =
  | { readonly kind: 'deliver' }
  | { readonly kind: 'lose' }
  | { readonly kind: 'delay'; readonly ms: number };

/** The call took effect (or not) in the coordinator, but its answer never reached the caller. */
export class CoordinatorReplyLostError extends UnderstudyError {
  override readonly name = 'CoordinatorReplyLostError';
  readonly code = 'COORDINATOR_REPLY_LOST';
  override readonly retryable = true;
  constructor(
    readonly nodeId: string,
    readonly operation: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(`${operation} from ${nodeId}: no answer within ${timeoutMs} ms`, options);
  }
}

/**
 * The fault switches of the shared in-memory "etcd" (see {@link MemoryCoordinator}): which node
 * ids are cut off, and what becomes of the answers to a node's calls.
 *
 * Partitions: while a node id is partitioned every call from it fails with
 * {@link CoordinatorUnavailableError} (so its keep-alives fail and its lease expires there
 * after the TTL) and its watchers hear nothing; on `heal` they get the current leader.
 */
export abstract class MemoryCoordinatorFaults {
  private readonly partitioned = new Set<string>();
  private readonly replyFates = new Map<
    string,
    { readonly fate: CoordinatorReplyFate; readonly operation: string | undefined }
  >();

  /**
   * From now on, the answers to `nodeId`'s calls (`operation` only, when given: `campaign`,
   * `resign`, `keepAlive`, `grant`, `publishMember`, ...) are lost or late, while the calls
   * themselves still take effect; undefined: delivered again.
   */
  setReplyFate(nodeId: string, fate: CoordinatorReplyFate | undefined, operation?: string): void {
    if (fate === undefined || fate.kind === 'deliver') this.replyFates.delete(nodeId);
    else this.replyFates.set(nodeId, { fate, operation });
  }

  /** What becomes of the answer to `nodeId`'s call `operation` made now. */
  replyFate(nodeId: string, operation: string): CoordinatorReplyFate {
    const set = this.replyFates.get(nodeId);
    return set !== undefined && (set.operation === undefined || set.operation === operation)
      ? set.fate
      : { kind: 'deliver' };
  }

  partition(nodeId: string): void {
    this.partitioned.add(nodeId);
  }

  heal(nodeId: string): void {
    this.partitioned.delete(nodeId);
    this.notifyWatchers();
  }

  isPartitioned(nodeId: string): boolean {
    return this.partitioned.has(nodeId);
  }

  /** Throws {@link CoordinatorUnavailableError} when `nodeId` is partitioned. */
  reach(nodeId: string, operation: string): void {
    if (this.partitioned.has(nodeId)) throw new CoordinatorUnavailableError(nodeId, operation);
  }

  /** Tells every watcher of the leader key what it has not heard yet (a healed node the leader). */
  protected abstract notifyWatchers(): void;
}
