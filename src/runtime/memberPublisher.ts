import type { MasterNodeContext } from '../../machines/masterNode.machine.ts';
import type { TimerHandle } from '../ports/clock.ts';
import type { CommittedStore } from './committedStore.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from './nodeRuntimeConfig.ts';
import { currentEpoch, type MemberRole } from './nodeStatus.ts';

/**
 * Keeps this node's member record (role, epoch, applied seq, address) published: on demand
 * and every `memberIntervalMs` once scheduled. A standby whose lease lapsed takes a new one.
 */
export class MemberPublisher {
  #timer: TimerHandle | undefined;

  constructor(
    private readonly deps: Pick<NodeRuntimeDeps, 'elector' | 'clock' | 'nodeId' | 'address'>,
    private readonly config: Pick<NodeRuntimeConfig, 'memberIntervalMs'>,
    private readonly store: CommittedStore,
    private readonly role: () => MemberRole,
    private readonly context: () => MasterNodeContext,
  ) {}

  /** Publishes every `memberIntervalMs` until {@link stop}. */
  schedule(): void {
    this.#timer = this.deps.clock.setTimeout(() => {
      this.publish();
      this.schedule();
    }, this.config.memberIntervalMs);
  }

  stop(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }

  /** Publishes the record now, unless the node is starting or stopping; failures are ignored. */
  publish(): void {
    const role = this.role();
    if (role === 'starting' || role === 'stopped' || role === 'stopping') return;
    const context = this.context();
    const { elector, clock } = this.deps;
    // A standby whose lease lapsed (etcd was unreachable) takes a new one to stay registered.
    const leased =
      role === 'standby' && clock.monotonicNow() >= elector.leaseDeadline()
        ? elector.start()
        : Promise.resolve();
    leased
      .then(() => {
        const now = this.role();
        return elector.publishMember({
          nodeId: this.deps.nodeId,
          role: now,
          epoch: currentEpoch(now, context),
          appliedSeq: this.store.appliedSeq,
          address: this.deps.address,
          updatedAt: clock.wallNow(),
        });
      })
      .catch(() => undefined);
  }
}
