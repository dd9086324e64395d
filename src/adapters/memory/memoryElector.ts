import type { Clock, TimerHandle } from '../../ports/clock.ts';
import { LeaseDeadline } from '../leaseDeadline.ts';
import { ElectorStateError, type Elector, type ResignOptions } from '../../ports/elector.ts';
import type { MemoryCoordinator } from './memoryCoordinator.ts';
import { CoordinatorReplyLostError } from './memoryCoordinatorFaults.ts';

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
  /** The lease a resign revoked: resigning again (a stop after a handover) has nothing to do. */
  let revokedId: number | undefined;
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
      if (id === undefined || closed || id === revokedId) return;
      try {
        await call('resign', () => {
          coord.resign(nodeId, id, options?.handoverTo);
          coord.forget(id);
          coord.revoke(nodeId, id);
        });
        revokedId = id;
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
      return undefined;
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
