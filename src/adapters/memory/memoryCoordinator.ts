import type { Clock, TimerHandle } from '../../ports/clock.ts';
import {
  ElectorStateError,
  MemberIdTakenError,
  type CampaignResult,
  type ElectionVerdict,
  type LeaderInfo,
  type LeaderView,
  type MemberRecord,
} from '../../ports/elector.ts';
import { MemoryCoordinatorFaults } from './memoryCoordinatorFaults.ts';

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
 * {@link SimClock}. Its fault switches (partitions, lost or late answers) are those of
 * {@link MemoryCoordinatorFaults}.
 */
export class MemoryCoordinator extends MemoryCoordinatorFaults {
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

  constructor(readonly clock: Clock) {
    super();
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
    if (listener !== undefined && !this.isPartitioned(lease.nodeId)) {
      queueMicrotask(() => listener(reason));
    }
    this.notifyWatchers();
  }

  protected override notifyWatchers(): void {
    for (const watcher of [...this.watchers]) this.deliver(watcher);
  }

  private deliver(watcher: Watcher): void {
    if (this.isPartitioned(watcher.nodeId)) return;
    const leader = this.currentLeader();
    const fingerprint = `${leader?.epoch ?? 0}:${leader?.handoverTo ?? ''}`;
    if (watcher.delivered === fingerprint) return;
    watcher.delivered = fingerprint;
    queueMicrotask(() => {
      if (this.watchers.has(watcher)) watcher.onChange(leader);
    });
  }
}
