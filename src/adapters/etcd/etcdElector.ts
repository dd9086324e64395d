import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../../ports/clock.ts';
import { LeaseDeadline } from '../leaseDeadline.ts';
import {
  ElectorStateError,
  type CampaignResult,
  type Elector,
  type LeaderInfo,
  type MemberRecord,
  type ResignOptions,
} from '../../ports/elector.ts';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  EtcdUnavailableError,
  openEtcd,
  withTimeout,
  type EtcdConnectionOptions,
} from './etcdClient.ts';
import {
  electionsPrefix,
  leaderKey,
  parseLeader,
  readElection,
  readLeader,
} from './etcdElection.ts';
import { watchLeader } from './etcdLeaderWatch.ts';
import { publishMemberRecord, readMembers } from './etcdMembers.ts';

export interface EtcdElectorOptions {
  readonly client: EtcdConnectionOptions;
  /** Keys live under `/understudy/<cluster>/`. */
  readonly cluster: string;
  readonly nodeId: string;
  /** Lease TTL; etcd grants whole seconds, so it is rounded up (at least 1 s). */
  readonly ttlMs: number;
  /** Safety margin subtracted from the deadline; default min(500, ttl/5). */
  readonly marginMs?: number;
  /** Keep-alive period; default ttl/3. */
  readonly keepAliveIntervalMs?: number;
  /** Bound on each etcd call; default min(3000, ttl). */
  readonly callTimeoutMs?: number;
  readonly clock: Clock;
}

/**
 * An {@link Elector} on etcd: a lease kept alive by its own loop (one keep-alive per tick), a
 * leader key created in a transaction and bound to the lease (with the election's record, bound
 * to none: see {@link electionsPrefix}), and a watch of that key.
 *
 * `leaseDeadline()` = (clock time the last successful keep-alive was sent) + TTL - margin.
 * Once the deadline passes, or etcd says the lease is gone, the lease is lost for good: the
 * handlers run once, keep-alives stop and the deadline never moves again.
 */
export function createEtcdElector(options: EtcdElectorOptions): Elector {
  const { cluster, nodeId, clock } = options;
  if (!(options.ttlMs > 0)) throw new RangeError(`ttlMs must be > 0, got ${options.ttlMs}`);
  const ttlSeconds = Math.max(1, Math.ceil(options.ttlMs / 1000));
  const ttlMs = ttlSeconds * 1000;
  const marginMs = options.marginMs ?? Math.min(500, ttlMs / 5);
  if (!(marginMs >= 0 && marginMs < ttlMs)) {
    throw new RangeError(`marginMs must be in [0, ttl), got ${marginMs}`);
  }
  const keepAliveIntervalMs = options.keepAliveIntervalMs ?? ttlMs / 3;
  const callTimeoutMs = options.callTimeoutMs ?? Math.min(DEFAULT_CALL_TIMEOUT_MS, ttlMs);
  const connection = openEtcd(options.client, callTimeoutMs);
  const { client } = connection;
  const key = leaderKey(cluster);

  let leaseId: string | null = null;
  /** The lease a resign revoked: resigning again (a stop after a handover) has nothing to do. */
  let revokedId: string | null = null;
  /** Every lease this elector was granted: a member record on one of them is its own. */
  const granted = new Set<string>();
  let starting: Promise<void> | null = null;
  let closed = false;
  let keepAliveTimer: TimerHandle | null = null;
  const watchers = new Set<() => void>();
  const lease = new LeaseDeadline(clock, ttlMs, marginMs);
  lease.onLost(() => {
    keepAliveTimer?.clear();
    keepAliveTimer = null;
  });

  async function keepAliveOnce(id: string): Promise<number> {
    const opening = client.leaseClient.leaseKeepAlive();
    // A stream that opens after its bound passed is not used: close it.
    const stream = await withTimeout(opening, callTimeoutMs, 'keepAlive').catch(
      (error: unknown) => {
        opening.then(
          (late) => {
            late.cancel();
          },
          () => undefined,
        );
        throw error;
      },
    );
    try {
      const ttl = await withTimeout(
        new Promise<number>((resolve, reject) => {
          stream.on('data', (response) => {
            resolve(Number(response.TTL));
          });
          stream.on('error', reject);
          stream.on('end', () => {
            reject(new Error('keep-alive stream ended'));
          });
          stream.write({ ID: id });
        }),
        callTimeoutMs,
        'keepAlive',
      );
      stream.end();
      return ttl;
    } catch (error) {
      stream.cancel();
      throw error;
    }
  }

  function scheduleKeepAlive(delayMs: number): void {
    if (lease.lostReason !== undefined || closed) return;
    keepAliveTimer = clock.setTimeout(() => {
      keepAliveTimer = null;
      void keepAliveTick();
    }, delayMs);
  }

  async function keepAliveTick(): Promise<void> {
    const id = leaseId;
    if (id === null || closed || lease.check()) return;
    const sentAt = clock.monotonicNow();
    let nextDelay = keepAliveIntervalMs;
    try {
      const ttl = await keepAliveOnce(id);
      // The answer is about lease `id`: once a new lease was granted meanwhile it says nothing
      // about the current one, whose own loop keeps it alive.
      if (closed || leaseId !== id) return;
      if (ttl <= 0) {
        lease.lose('lease expired or revoked in etcd');
        return;
      }
      // A keep-alive sent after the deadline cannot revive the lease: the node already had to stop.
      lease.confirm(sentAt);
      if (lease.lostReason !== undefined) return;
    } catch {
      if (leaseId !== id) return;
      // Unreachable etcd: retry sooner; the deadline passes on its own if this keeps failing.
      nextDelay = Math.min(keepAliveIntervalMs, 250);
    }
    scheduleKeepAlive(nextDelay);
  }

  async function grant(): Promise<void> {
    const sentAt = clock.monotonicNow();
    const response = await withTimeout(
      client.leaseClient.leaseGrant({ TTL: ttlSeconds }),
      callTimeoutMs,
      'lease grant',
    );
    granted.add(response.ID);
    if (closed) return;
    leaseId = response.ID;
    lease.confirm(sentAt);
    scheduleKeepAlive(keepAliveIntervalMs);
  }

  function requireLease(operation: string): string {
    if (closed) throw new ElectorStateError('closed', `${operation}: elector is closed`);
    if (leaseId === null)
      throw new ElectorStateError('notStarted', `${operation}: call start() first`);
    if (lease.check()) {
      throw new ElectorStateError(
        'leaseLost',
        `${operation}: lease lost (${lease.lostReason ?? ''})`,
      );
    }
    return leaseId;
  }

  const elector: Elector = {
    start() {
      if (closed)
        return Promise.reject(new ElectorStateError('closed', 'start: elector is closed'));
      if (leaseId !== null) lease.check();
      if (lease.lostReason !== undefined) {
        // The lease is gone for good: a new start grants a new one.
        lease.reset();
        leaseId = null;
        starting = null;
      }
      starting ??= grant().catch((error: unknown) => {
        starting = null;
        throw error;
      });
      return starting;
    },

    async campaign(info: LeaderInfo): Promise<CampaignResult> {
      const id = requireLease('campaign');
      const value = JSON.stringify({ nodeId: info.nodeId, address: info.address });
      // The election record: created with the leader key, so at the epoch; a fresh name each
      // time, so a record is never overwritten; no lease, so it stays (see readElection).
      const record = `${electionsPrefix(cluster)}${randomUUID()}`;
      const response = await withTimeout(
        client
          .if(key, 'Create', '==', 0)
          .then(client.put(key).value(value).lease(id), client.put(record).value(value))
          .else(client.get(key))
          .commit(),
        callTimeoutMs,
        'campaign',
      );
      if (response.succeeded) return { won: true, epoch: Number(response.header.revision) };
      const kv = response.responses[0]?.response_range.kvs[0];
      const holder = kv === undefined ? null : parseLeader(kv);
      // Already ours (an earlier campaign on this lease): the win stands, with its epoch.
      if (kv !== undefined && holder !== null && kv.lease === id && holder.nodeId === info.nodeId) {
        return { won: true, epoch: holder.epoch };
      }
      return { won: false, leader: holder };
    },

    leader() {
      return readLeader(client, cluster, callTimeoutMs);
    },

    election(epoch, claimant) {
      return readElection(client, cluster, epoch, claimant, callTimeoutMs);
    },

    observe(onChange) {
      const stop = watchLeader(client, cluster, callTimeoutMs, onChange);
      const unsubscribe = (): void => {
        watchers.delete(unsubscribe);
        stop();
      };
      watchers.add(unsubscribe);
      return unsubscribe;
    },

    leaseDeadline() {
      return lease.deadline();
    },

    onLeaseLost(handler) {
      return lease.onLost(handler);
    },

    async resign(options?: ResignOptions) {
      const id = leaseId;
      if (id === null || closed || id === revokedId) return;
      try {
        const revision = await withTimeout(client.get(key).exec(), callTimeoutMs, 'resign');
        const kv = revision.kvs[0];
        const held = kv === undefined ? null : parseLeader(kv);
        if (kv !== undefined && held?.nodeId === nodeId && kv.lease === id) {
          if (options?.handoverTo !== undefined) {
            // The hint: a put on the same lease keeps the create revision (the epoch).
            const value = JSON.stringify({
              nodeId,
              address: held.address,
              handoverTo: options.handoverTo,
            });
            await withTimeout(
              client
                .if(key, 'Create', '==', kv.create_revision)
                .then(client.put(key).value(value).lease(id))
                .commit(),
              callTimeoutMs,
              'resign',
            );
          }
          await withTimeout(
            client
              .if(key, 'Create', '==', kv.create_revision)
              .then(client.delete().key(key))
              .commit(),
            callTimeoutMs,
            'resign',
          );
        }
        await withTimeout(client.leaseClient.leaseRevoke({ ID: id }), callTimeoutMs, 'revoke');
        revokedId = id;
      } finally {
        // Given up locally whatever etcd answered: keep-alives stop, so even when etcd cannot be
        // reached now the lease (and a leader key bound to it) expires within one TTL.
        lease.lose('resigned');
      }
    },

    async publishMember(record: MemberRecord) {
      const id = requireLease('publishMember');
      return publishMemberRecord(client, cluster, callTimeoutMs, { id, granted }, record);
    },

    members() {
      return readMembers(client, cluster, callTimeoutMs);
    },

    close() {
      if (closed) return Promise.resolve();
      closed = true;
      keepAliveTimer?.clear();
      keepAliveTimer = null;
      lease.stop();
      for (const unsubscribe of [...watchers]) unsubscribe();
      if (connection.owned) client.close();
      return Promise.resolve();
    },
  };
  return elector;
}

export { EtcdUnavailableError };
