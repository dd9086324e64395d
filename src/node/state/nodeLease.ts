import type { Clock, TimerHandle } from '../../ports/clock.ts';
import type { Elector } from '../../ports/elector.ts';

/** Why a primary whose lease deadline passed stops (its pipeline's refusals, its fault). */
export const LEASE_DEADLINE_PASSED = 'lease deadline passed';

/**
 * This node's lease as the node acts on it: the one place in the node that says whether the
 * lease may still be acted on. The deadline itself is the elector's (`Elector.leaseDeadline()`,
 * computed by the adapters' `LeaseDeadline` from the last confirmed keep-alive); this class only
 * compares it with the clock's monotonic reading. A promotion asks it before the fence, the
 * write pipeline before taking a command, answering, and evicting, and the serve actor watches
 * it ({@link watch}) to step down: all read the same deadline on the same clock.
 */
export class NodeLease {
  constructor(
    private readonly elector: Pick<Elector, 'leaseDeadline' | 'onLeaseLost'>,
    private readonly clock: Pick<Clock, 'monotonicNow' | 'setTimeout'>,
  ) {}

  /** The monotonic time after which this node must not act on its lease. */
  deadline(): number {
    return this.elector.leaseDeadline();
  }

  /** True while the lease deadline is ahead: the node may read, write and fence as primary. */
  live(): boolean {
    return this.clock.monotonicNow() < this.elector.leaseDeadline();
  }

  /** Calls `handler` once when the elector reports the lease lost. Returns its remover. */
  onLost(handler: (reason: string) => void): () => void {
    return this.elector.onLeaseLost(handler);
  }

  /**
   * Calls `onLost` when the elector reports the lease lost (its reason) or, checked on a timer
   * at the deadline, when the deadline has passed ({@link LEASE_DEADLINE_PASSED}); a deadline
   * that moved on (a keep-alive confirmed meanwhile) is waited for again. Returns its stopper.
   */
  watch(onLost: (reason: string) => void): () => void {
    let stopped = false;
    let timer: TimerHandle | undefined;
    const unLease = this.onLost((reason) => {
      if (!stopped) onLost(reason);
    });
    const arm = (): void => {
      const wait = Math.max(1, this.deadline() - this.clock.monotonicNow());
      timer = this.clock.setTimeout(() => {
        if (stopped) return;
        if (!this.live()) onLost(LEASE_DEADLINE_PASSED);
        else arm();
      }, wait);
    };
    arm();
    return () => {
      stopped = true;
      unLease();
      timer?.clear();
    };
  }
}
