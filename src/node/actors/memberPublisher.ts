import type { MasterNodeContext } from '../../../machines/masterNode.machine.ts';
import type { TimerHandle } from '../../ports/clock.ts';
import { MemberIdTakenError, type MemberRecord } from '../../ports/elector.ts';
import type { CommittedStore } from '../state/committedStore.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from '../nodeRuntimeConfig.ts';
import { currentEpoch, type MemberRole } from '../nodeStatus.ts';

/**
 * Keeps this node's member record (role, epoch, applied seq, address) published: on demand
 * and every `memberIntervalMs` once scheduled. A standby whose lease lapsed takes a new one.
 */
export class MemberPublisher {
  #timer: TimerHandle | undefined;
  /** The last publish found the id taken by another process. */
  #taken = false;

  constructor(
    private readonly deps: Pick<
      NodeRuntimeDeps,
      'elector' | 'clock' | 'logger' | 'nodeId' | 'address'
    >,
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

  /** This node's record now, in `role`. */
  record(role: MemberRole): MemberRecord {
    return {
      nodeId: this.deps.nodeId,
      role,
      epoch: currentEpoch(role, this.context()),
      appliedSeq: this.store.appliedSeq,
      address: this.deps.address,
      updatedAt: this.deps.clock.wallNow(),
    };
  }

  /**
   * Publishes the record now, unless the node is starting or stopping; failures are ignored,
   * but the id taken by another process is logged (once until it is registered again).
   */
  publish(): void {
    const role = this.role();
    if (role === 'starting' || role === 'stopped' || role === 'stopping') return;
    const { elector } = this.deps;
    // A standby whose lease lapsed (etcd was unreachable) or was given up takes a new one to
    // stay registered (start() does nothing while the lease is live).
    const leased = role === 'standby' ? elector.start() : Promise.resolve();
    leased
      .then(() => elector.publishMember(this.record(this.role())))
      .then(
        () => {
          this.#taken = false;
        },
        (err: unknown) => {
          if (!(err instanceof MemberIdTakenError) || this.#taken) return;
          this.#taken = true;
          this.deps.logger.error({ event: 'memberIdTaken', err: err.message }, err.message);
        },
      );
  }
}
