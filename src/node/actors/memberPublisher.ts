import type { TimerHandle } from '../../ports/clock.ts';
import { MemberIdTakenError, type MemberRecord } from '../../ports/elector.ts';
import type { ActorContext, NodeMachine } from '../nodeContext.ts';
import { currentEpoch, type MemberRole } from '../nodeStatus.ts';

/** What the member publisher uses of the node's context. */
export type MemberPublisherContext = ActorContext<
  'elector' | 'clock' | 'logger' | 'nodeId' | 'address' | 'store',
  'memberIntervalMs'
> & { readonly machine: Pick<NodeMachine, 'context' | 'memberRole'> };

/**
 * Keeps this node's member record (role, epoch, applied seq, address) published: on demand
 * and every `memberIntervalMs` once scheduled. A standby whose lease lapsed takes a new one.
 */
export class MemberPublisher {
  #timer: TimerHandle | undefined;
  /** The last publish found the id taken by another process. */
  #taken = false;

  constructor(private readonly ctx: MemberPublisherContext) {}

  /** Publishes every `memberIntervalMs` until {@link stop}. */
  schedule(): void {
    this.#timer = this.ctx.clock.setTimeout(() => {
      this.publish();
      this.schedule();
    }, this.ctx.config.memberIntervalMs);
  }

  stop(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }

  /** This node's record now, in `role`. */
  record(role: MemberRole): MemberRecord {
    return {
      nodeId: this.ctx.nodeId,
      role,
      epoch: currentEpoch(role, this.ctx.machine.context()),
      appliedSeq: this.ctx.store.appliedSeq,
      address: this.ctx.address,
      updatedAt: this.ctx.clock.wallNow(),
    };
  }

  /**
   * Publishes the record now, unless the node is starting or stopping; failures are ignored,
   * but the id taken by another process is logged (once until it is registered again).
   */
  publish(): void {
    const role = this.ctx.machine.memberRole();
    if (role === 'starting' || role === 'stopped' || role === 'stopping') return;
    const { elector } = this.ctx;
    // A standby whose lease lapsed (etcd was unreachable) or was given up takes a new one to
    // stay registered (start() does nothing while the lease is live).
    const leased = role === 'standby' ? elector.start() : Promise.resolve();
    leased
      .then(() => elector.publishMember(this.record(this.ctx.machine.memberRole())))
      .then(
        () => {
          this.#taken = false;
        },
        (err: unknown) => {
          if (!(err instanceof MemberIdTakenError) || this.#taken) return;
          this.#taken = true;
          this.ctx.logger.error({ event: 'memberIdTaken', err: err.message }, err.message);
        },
      );
  }
}
