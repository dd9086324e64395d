/** What the leader key holds: who the primary is, for discovery and fencing. */
import { UnderstudyError } from '../domain/model/understudyError.ts';
export interface LeaderInfo {
  readonly nodeId: string;
  /** Where the node answers status and admin requests (free-form, e.g. `http://127.0.0.1:9100`). */
  readonly address: string;
}

/** The leader as etcd (or the simulation) sees it; `epoch` is the leader key's create revision. */
export interface LeaderView extends LeaderInfo {
  readonly epoch: number;
  /**
   * Set by a primary handing over to a named node (planned switchover), just before it
   * resigns: standbys other than this node wait `campaignMaxDelayMs` before campaigning once
   * the key is gone, so the named node wins. Absent otherwise.
   */
  readonly handoverTo?: string;
}

/** How a primary resigns. */
export interface ResignOptions {
  /**
   * Hand over to this node: the leader key (same lease, same create revision, so the same
   * epoch) is rewritten with `handoverTo` before it is deleted, and watchers see both.
   */
  readonly handoverTo?: string;
}

export type CampaignResult =
  | { readonly won: true; readonly epoch: number }
  | { readonly won: false; readonly leader: LeaderView | null };

/**
 * What the coordinator says of an `EPOCH` entry's claim that `nodeId` won the leader key at
 * `epoch` (the key's create revision): a real election or none. There is no third answer: a
 * claim the coordinator cannot confirm, for whatever reason, is no election.
 */
export type ElectionVerdict =
  { readonly kind: 'elected' } | { readonly kind: 'notElected'; readonly why: string };

/** One node's registration in the member registry, bound to its lease. */
export interface MemberRecord {
  readonly nodeId: string;
  readonly role: string;
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly address: string;
  readonly updatedAt: number;
}

/**
 * Leadership for one node: a lease kept alive in the background, a leader key bound to it.
 *
 * Promises: at most one holder of the leader key at a time; each win has an epoch larger
 * than every earlier one; `leaseDeadline()` is a time before which the lease cannot have
 * expired in the store, computed from when the last successful keep-alive was sent, so a
 * node that checks it before acting never acts on an expired lease - even after a pause.
 * A call its lifecycle does not allow (no lease, lease lost, closed) rejects with
 * {@link ElectorStateError}.
 */
export interface Elector {
  /**
   * Grants the lease and starts keeping it alive. Calling it again while the lease is live does
   * nothing; after the lease was lost or resigned it grants a new one.
   */
  start(): Promise<void>;
  /** Tries once to create the leader key. Resolves lost (with the holder) when it exists. */
  campaign(info: LeaderInfo): Promise<CampaignResult>;
  /** The current leader, read now. */
  leader(): Promise<LeaderView | null>;
  /**
   * Whether `nodeId` won the leader key at `epoch`: the key was created at revision `epoch`
   * with `nodeId` as its holder. Read now (linearizable) from the election's record, which
   * `campaign` writes with the key and which outlives the key, its lease and the store's
   * compaction of its history: the answer for an epoch never changes. Needs no lease. Rejects
   * when the coordinator cannot be reached.
   */
  election(epoch: number, nodeId: string): Promise<ElectionVerdict>;
  /**
   * Calls `onChange` with the leader (or null when the key is gone) at once and on every
   * change, until the returned function is called.
   */
  observe(onChange: (leader: LeaderView | null) => void): () => void;
  /**
   * Monotonic clock time (ms, `Clock.monotonicNow`) after which this node must not act on its
   * lease: (when the last confirmed keep-alive was sent) + TTL - margin. Synchronous. Holds as
   * long as this node's clock and the store's run at rates within margin / TTL of each other;
   * wall-clock steps do not affect it.
   */
  leaseDeadline(): number;
  /** Called once when the current lease is lost (expired, revoked, or its deadline passed). */
  onLeaseLost(handler: (reason: string) => void): () => void;
  /**
   * Deletes the leader key if this node holds it and revokes the lease. With `handoverTo`,
   * first rewrites the key's value with that hint (see {@link LeaderView.handoverTo}). Once
   * the lease is revoked, resigning again does nothing.
   */
  resign(options?: ResignOptions): Promise<void>;
  /**
   * Registers this node's member record, bound to its lease: creates the key only when no member
   * holds the id, and updates it when this elector holds it (on its current lease or one it had
   * before). Rejects with {@link MemberIdTakenError} when another lease holds it: another
   * process runs with this id (or one that died has a lease that has not expired yet). A holder
   * the adapter can prove gone (etcd: a process of this host, boot and pid namespace whose pid no
   * process has) holds nothing: its lease is revoked and the id taken at once, and the call
   * resolves with the gone holder's record (undefined otherwise).
   */
  publishMember(record: MemberRecord): Promise<MemberRecord | undefined>;
  /** Every registered member. */
  members(): Promise<MemberRecord[]>;
  /** Stops keep-alives and closes connections, without revoking. */
  close(): Promise<void>;
}

/**
 * The elector was used in a way its lifecycle does not allow: before `start()`, after its
 * lease was lost, or once closed. Not retryable as such: a new `start()` may be.
 */
export class ElectorStateError extends UnderstudyError {
  override readonly name = 'ElectorStateError';
  readonly code = 'ELECTOR_STATE';
  override readonly retryable = false;
  constructor(
    readonly state: 'notStarted' | 'leaseLost' | 'closed',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The member key of this node's id is held by another lease: another process with the same
 * `--id` is registered (or one that died, until its lease expires). Carries the holder's
 * record. Retryable only in the sense that a dead holder's lease expires within one TTL.
 */
export class MemberIdTakenError extends UnderstudyError {
  override readonly name = 'MemberIdTakenError';
  readonly code = 'MEMBER_ID_TAKEN';
  override readonly retryable = true;
  constructor(
    readonly nodeId: string,
    /** The record the other holder published. */
    readonly holder: MemberRecord,
    /**
     * How long the coordinator still keeps the holder's lease (ms; at most 0 once it expired and
     * only waits to be revoked), or undefined when it could not be read.
     */
    readonly holderLeaseRemainingMs?: number,
    options?: ErrorOptions,
  ) {
    super(
      `node id ${nodeId} is registered by another process (at ${holder.address || 'an unknown address'})`,
      options,
    );
  }
}
