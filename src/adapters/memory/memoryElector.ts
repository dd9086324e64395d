import type { Clock, TimerHandle } from '../../ports/clock.ts';
import { LeaseDeadline } from '../leaseDeadline.ts';
import {
  ElectorStateError,
  MemberIdTakenError,
  type CampaignResult,
  type ElectionVerdict,
  type Elector,
  type LeaderInfo,
  type LeaderView,
  type MemberRecord,
  type ResignOptions,
} from '../../ports/elector.ts';
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

interface Lease {
  readonly id: number;
  readonly nodeId: string;
  readonly ttlMs: number;
  expiresAt: number;
  timer: TimerHandle;
  /** Expired, its keys not yet deleted (see {@link MemoryCoordinator.revocationDelayMs}). */
  expired?: boolean;
}

interface LeaderKey {
  readonly view: LeaderView;
  readonly leaseId: number;
}

interface Watcher {
  readonly nodeId: string;
  readonly onChange: (leader: LeaderView | null) => void;
  /** The epoch and hint last delivered (`0` for "no leader"), undefined before the first delivery. */
  delivered: string | undefined;
}

/**
 * The shared in-memory "etcd" behind every node's {@link createMemoryElector}: leases whose
 * TTL runs on the clock, a leader key bound to a lease whose create revision (a global
 * revision counter, bumped by every write) is the epoch, and member records bound to
 * leases. Everything happens on the given clock, so expiry is deterministic under a
 * {@link SimClock}.
 *
 * Partitions: while a node id is partitioned every call from it fails with
 * {@link CoordinatorUnavailableError} (so its keep-alives fail and its lease expires here
 * after the TTL) and its watchers hear nothing; on `heal` they get the current leader.
 */
export class MemoryCoordinator {
  /**
   * How long an expired lease's keys outlive it, as with etcd, which revokes expired leases in
   * a loop, later under load (and retries a failed revocation 3 s later). Default 0: at once.
   */
  revocationDelayMs = 0;
  private revisionValue = 0;
  private nextLeaseId = 1;
  private readonly leases = new Map<number, Lease>();
  private leaderKey: LeaderKey | null = null;
  /**
   * Who won the leader key at each epoch (its create revision): the election records, as etcd's
   * (kept for good, bound to no lease; this store keeps no other history, so has none to compact).
   */
  private readonly elections = new Map<number, string>();
  private readonly memberRecords = new Map<string, { record: MemberRecord; leaseId: number }>();
  private readonly watchers = new Set<Watcher>();
  private readonly leaseListeners = new Map<number, (reason: string) => void>();
  private readonly partitioned = new Set<string>();
  private readonly replyFates = new Map<
    string,
    { readonly fate: CoordinatorReplyFate; readonly operation: string | undefined }
  >();

  constructor(readonly clock: Clock) {}

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

  /** The store revision: bumped by every write. */
  get revision(): number {
    return this.revisionValue;
  }

  /** The leader key as stored now (for test assertions; no partition applies). */
  currentLeader(): LeaderView | null {
    return this.leaderKey?.view ?? null;
  }

  /** Ids of the leases alive now. */
  liveLeases(): number[] {
    return [...this.leases.keys()];
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

  /** Grants a lease of `ttlMs`, expiring on the clock unless kept alive. */
  grant(nodeId: string, ttlMs: number, onLost: (reason: string) => void): number {
    this.reach(nodeId, 'grant');
    const id = this.nextLeaseId++;
    const lease: Lease = {
      id,
      nodeId,
      ttlMs,
      expiresAt: this.clock.monotonicNow() + ttlMs,
      timer: this.clock.setTimeout(() => this.expire(id), ttlMs),
    };
    this.leases.set(id, lease);
    this.leaseListeners.set(id, onLost);
    return id;
  }

  /** Extends the lease to now + TTL; false when it no longer exists. */
  keepAlive(nodeId: string, leaseId: number): boolean {
    this.reach(nodeId, 'keepAlive');
    const lease = this.leases.get(leaseId);
    if (lease === undefined || lease.expired === true) return false;
    lease.timer.clear();
    lease.expiresAt = this.clock.monotonicNow() + lease.ttlMs;
    lease.timer = this.clock.setTimeout(() => this.expire(leaseId), lease.ttlMs);
    return true;
  }

  /** Revokes the lease and deletes every key bound to it. */
  revoke(nodeId: string, leaseId: number): void {
    this.reach(nodeId, 'revoke');
    this.dropLease(leaseId, 'revoked');
  }

  /** Creates the leader key bound to `leaseId` unless it exists. */
  campaign(nodeId: string, leaseId: number, info: LeaderInfo): CampaignResult {
    this.reach(nodeId, 'campaign');
    if (!this.leases.has(leaseId)) {
      throw new ElectorStateError('leaseLost', `campaign: lease ${leaseId} not found`);
    }
    if (this.leaderKey !== null) return { won: false, leader: this.leaderKey.view };
    const epoch = ++this.revisionValue;
    this.elections.set(epoch, info.nodeId);
    this.leaderKey = {
      view: { nodeId: info.nodeId, address: info.address, epoch },
      leaseId,
    };
    this.notifyWatchers();
    return { won: true, epoch };
  }

  leader(nodeId: string): LeaderView | null {
    this.reach(nodeId, 'leader');
    return this.currentLeader();
  }

  /** Whether `claimant` won the leader key at revision `epoch` (asked by `nodeId`). */
  election(nodeId: string, epoch: number, claimant: string): ElectionVerdict {
    this.reach(nodeId, 'election');
    const winner = this.elections.get(epoch);
    if (winner === claimant) return { kind: 'elected' };
    return {
      kind: 'notElected',
      why:
        winner === undefined
          ? `the leader key was not created at revision ${epoch}`
          : `revision ${epoch} elected ${winner}`,
    };
  }

  /** Deletes the leader key if it is bound to `leaseId` (after writing the handover hint, if any). */
  resign(nodeId: string, leaseId: number, handoverTo?: string): void {
    this.reach(nodeId, 'resign');
    if (this.leaderKey?.leaseId === leaseId && handoverTo !== undefined) {
      this.leaderKey = { view: { ...this.leaderKey.view, handoverTo }, leaseId };
      this.revisionValue++;
      this.notifyWatchers();
    }
    if (this.leaderKey?.leaseId === leaseId) {
      this.leaderKey = null;
      this.revisionValue++;
      this.notifyWatchers();
    }
  }

  /**
   * Creates `record` bound to `leaseId` when no member holds its id, or updates it when the
   * holder's lease is `leaseId` or one of `ownLeases`; throws {@link MemberIdTakenError} when
   * another lease holds it.
   */
  putMember(
    nodeId: string,
    leaseId: number,
    record: MemberRecord,
    ownLeases: ReadonlySet<number> = new Set(),
  ): void {
    this.reach(nodeId, 'publishMember');
    if (!this.leases.has(leaseId)) {
      throw new ElectorStateError('leaseLost', `publishMember: lease ${leaseId} not found`);
    }
    const held = this.memberRecords.get(record.nodeId);
    if (held !== undefined && held.leaseId !== leaseId && !ownLeases.has(held.leaseId)) {
      const lease = this.leases.get(held.leaseId);
      const remainingMs = (lease?.expiresAt ?? 0) - this.clock.monotonicNow();
      throw new MemberIdTakenError(record.nodeId, held.record, remainingMs);
    }
    this.revisionValue++;
    this.memberRecords.set(record.nodeId, { record, leaseId });
  }

  members(nodeId: string): MemberRecord[] {
    this.reach(nodeId, 'members');
    return [...this.memberRecords.values()]
      .map((member) => member.record)
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Watches the leader key for `nodeId`: delivers the current leader, then every change. */
  watch(nodeId: string, onChange: (leader: LeaderView | null) => void): () => void {
    const watcher: Watcher = { nodeId, onChange, delivered: undefined };
    this.watchers.add(watcher);
    this.deliver(watcher);
    return () => {
      this.watchers.delete(watcher);
    };
  }

  /** Stops telling the elector of `leaseId` about its loss (the elector closed). */
  forget(leaseId: number): void {
    this.leaseListeners.delete(leaseId);
  }

  private expire(leaseId: number): void {
    const lease = this.leases.get(leaseId);
    if (lease === undefined || this.clock.monotonicNow() < lease.expiresAt) return;
    if (this.revocationDelayMs > 0 && lease.expired !== true) {
      lease.expired = true;
      lease.timer = this.clock.setTimeout(
        () => this.dropLease(leaseId, 'lease expired'),
        this.revocationDelayMs,
      );
      return;
    }
    this.dropLease(leaseId, 'lease expired');
  }

  private dropLease(leaseId: number, reason: string): void {
    const lease = this.leases.get(leaseId);
    if (lease === undefined) return;
    lease.timer.clear();
    this.leases.delete(leaseId);
    if (this.leaderKey?.leaseId === leaseId) {
      this.leaderKey = null;
      this.revisionValue++;
    }
    for (const [id, member] of this.memberRecords) {
      if (member.leaseId === leaseId) {
        this.memberRecords.delete(id);
        this.revisionValue++;
      }
    }
    const listener = this.leaseListeners.get(leaseId);
    this.leaseListeners.delete(leaseId);
    // A partitioned holder does not hear of it; its own deadline tells it.
    if (listener !== undefined && !this.partitioned.has(lease.nodeId)) {
      queueMicrotask(() => listener(reason));
    }
    this.notifyWatchers();
  }

  private notifyWatchers(): void {
    for (const watcher of [...this.watchers]) this.deliver(watcher);
  }

  private deliver(watcher: Watcher): void {
    if (this.partitioned.has(watcher.nodeId)) return;
    const leader = this.currentLeader();
    const fingerprint = `${leader?.epoch ?? 0}:${leader?.handoverTo ?? ''}`;
    if (watcher.delivered === fingerprint) return;
    watcher.delivered = fingerprint;
    queueMicrotask(() => {
      if (this.watchers.has(watcher)) watcher.onChange(leader);
    });
  }
}

export interface MemoryElectorOptions {
  readonly nodeId: string;
  readonly ttlMs: number;
  /** Subtracted from the deadline; default min(500, ttl/5). */
  readonly marginMs?: number;
  /** Keep-alive period; default ttl/3. */
  readonly keepAliveIntervalMs?: number;
  readonly clock: Clock;
  /**
   * How long one way of a call takes on `clock` (ms), asked per call; default 0 (the call
   * reaches the coordinator in a microtask).
   */
  readonly latencyMs?: () => number;
  /** A call whose answer is lost or later than this fails (ms); default min(3000, ttl), as etcd. */
  readonly callTimeoutMs?: number;
}

/**
 * One node's {@link Elector} over a {@link MemoryCoordinator}, with the real adapter's
 * semantics: keep-alives every ttl/3 on the clock; `leaseDeadline()` = when the last
 * successful keep-alive (or the grant) was sent + ttl - margin; `onLeaseLost` fires once on
 * expiry, revocation (`resign`) or the deadline passing; `observe` reports the leader at
 * once and on every change. All calls settle asynchronously: each reaches the coordinator
 * after `latencyMs` (a microtask by default) and is answered as long after, unless the
 * coordinator loses or delays the answer ({@link MemoryCoordinator.setReplyFate}): then the
 * call fails after `callTimeoutMs` although it took effect.
 */
export function createMemoryElector(
  coord: MemoryCoordinator,
  options: MemoryElectorOptions,
): Elector {
  const { nodeId, ttlMs, clock } = options;
  const marginMs = options.marginMs ?? Math.min(500, ttlMs / 5);
  const intervalMs = options.keepAliveIntervalMs ?? ttlMs / 3;
  const callTimeoutMs = options.callTimeoutMs ?? Math.min(3000, ttlMs);
  const latency = options.latencyMs;
  let leaseId: number | undefined;
  /** Every lease this elector was granted: a member record on one of them is its own. */
  const ownLeases = new Set<number>();
  let starting: Promise<void> | undefined;
  let closed = false;
  let keepAliveTimer: TimerHandle | undefined;
  const unwatchers = new Set<() => void>();
  const lease = new LeaseDeadline(clock, ttlMs, marginMs);
  lease.onLost(() => {
    keepAliveTimer?.clear();
    keepAliveTimer = undefined;
  });

  /** One way of a call: `latencyMs` on the clock, or a microtask. */
  function travel(): Promise<void> {
    const ms = latency?.() ?? 0;
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => clock.setTimeout(resolve, ms));
  }

  /**
   * A call to the coordinator, as over a network: `apply` runs when the request arrives (and
   * takes effect there); its answer travels back, or is lost or late as the coordinator says.
   */
  async function call<T>(operation: string, apply: () => T): Promise<T> {
    const sentAt = clock.monotonicNow();
    await travel();
    const fate = coord.replyFate(nodeId, operation);
    const outcome = (() => {
      try {
        return { ok: true as const, value: apply() };
      } catch (err) {
        return { ok: false as const, err };
      }
    })();
    if (fate.kind === 'deliver') await travel();
    else {
      const late = fate.kind === 'delay' ? fate.ms : Number.POSITIVE_INFINITY;
      const left = Math.max(0, callTimeoutMs - (clock.monotonicNow() - sentAt));
      await new Promise<void>((resolve) => clock.setTimeout(() => resolve(), Math.min(late, left)));
      if (late > left) throw new CoordinatorReplyLostError(nodeId, operation, callTimeoutMs);
    }
    if (!outcome.ok) throw outcome.err;
    return outcome.value;
  }

  function keepAliveLoop(): void {
    keepAliveTimer = clock.setTimeout(() => {
      keepAliveTimer = undefined;
      if (lease.lostReason !== undefined || closed || leaseId === undefined) return;
      const sentAt = clock.monotonicNow();
      const id = leaseId;
      call('keepAlive', () => coord.keepAlive(nodeId, id)).then(
        (alive) => {
          // An answer about an earlier lease says nothing about the current one.
          if (lease.lostReason !== undefined || closed || leaseId !== id) return;
          if (!alive) {
            lease.lose('lease expired');
            return;
          }
          lease.confirm(sentAt);
          if (lease.lostReason === undefined) keepAliveLoop();
        },
        () => {
          // Unreachable: keep trying; the deadline timer decides when it is lost.
          if (lease.lostReason === undefined && !closed && leaseId === id) keepAliveLoop();
        },
      );
    }, intervalMs);
  }

  function requireLease(operation: string): number {
    if (closed) throw new ElectorStateError('closed', `${operation}: elector closed`);
    if (leaseId === undefined) {
      throw new ElectorStateError('notStarted', `${operation}: start() first`);
    }
    if (lease.check()) {
      throw new ElectorStateError(
        'leaseLost',
        `${operation}: lease lost (${lease.lostReason ?? 'deadline passed'})`,
      );
    }
    return leaseId;
  }

  return {
    start() {
      if (leaseId !== undefined) lease.check();
      if (lease.lostReason !== undefined && !closed) {
        // The lease is gone: a new start grants a new one.
        lease.reset();
        leaseId = undefined;
        starting = undefined;
      }
      starting ??= (async () => {
        await Promise.resolve();
        if (closed) throw new ElectorStateError('closed', 'start: elector closed');
        const sentAt = clock.monotonicNow();
        // An old lease expiring in the coordinator must not end a newer one.
        let granted: number | undefined;
        const id = await call('grant', () => {
          granted = coord.grant(nodeId, ttlMs, (reason) => {
            if (granted !== undefined && leaseId === granted) lease.lose(reason);
          });
          return granted;
        });
        ownLeases.add(id);
        if (closed) throw new ElectorStateError('closed', 'start: elector closed');
        leaseId = id;
        lease.confirm(sentAt);
        keepAliveLoop();
      })().catch((err: unknown) => {
        // A failed grant (coordinator unreachable) is not cached: the next start() retries,
        // as the etcd elector does. Found by the failover simulation.
        starting = undefined;
        throw err;
      });
      return starting;
    },

    async campaign(info) {
      await Promise.resolve();
      const id = requireLease('campaign');
      return call('campaign', () => coord.campaign(nodeId, id, info));
    },

    leader() {
      return call('leader', () => coord.leader(nodeId));
    },

    election(epoch, claimant) {
      return call('election', () => coord.election(nodeId, epoch, claimant));
    },

    observe(onChange) {
      const unwatch = coord.watch(nodeId, onChange);
      const stop = (): void => {
        unwatch();
        unwatchers.delete(stop);
      };
      unwatchers.add(stop);
      return stop;
    },

    leaseDeadline() {
      return lease.deadline();
    },

    onLeaseLost(handler) {
      return lease.onLost(handler);
    },

    async resign(options?: ResignOptions) {
      await Promise.resolve();
      const id = leaseId;
      if (id === undefined || closed) return;
      try {
        await call('resign', () => {
          coord.resign(nodeId, id, options?.handoverTo);
          coord.forget(id);
          coord.revoke(nodeId, id);
        });
      } finally {
        // Given up locally whatever the coordinator answered: keep-alives stop, so the lease
        // expires within one TTL even when the coordinator cannot be reached now.
        lease.lose('resigned');
      }
    },

    async publishMember(record) {
      await Promise.resolve();
      const id = requireLease('publishMember');
      await call('publishMember', () => coord.putMember(nodeId, id, record, ownLeases));
    },

    members() {
      return call('members', () => coord.members(nodeId));
    },

    close() {
      if (closed) return Promise.resolve();
      closed = true;
      keepAliveTimer?.clear();
      keepAliveTimer = undefined;
      lease.stop();
      if (leaseId !== undefined) coord.forget(leaseId);
      for (const stop of [...unwatchers]) stop();
      return Promise.resolve();
    },
  };
}
