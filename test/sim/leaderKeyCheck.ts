import type { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import type { SimClock } from '../../src/adapters/memory/simClock.ts';
import type { NodeSlot } from './nodeSlot.ts';
import { LEADER_KEY_SLACK_MS, SIM_TTL_MS } from './simSettings.ts';

/** The leader-key invariant of the failover simulation (see {@link LeaderKeyCheck.check}). */
export class LeaderKeyCheck {
  /**
   * Since when the leader key's holder has not been a running primary, who it is, and whether
   * it was down (crashed, paused or cut off from etcd) then.
   */
  #keyNotServing:
    | {
        readonly nodeId: string;
        readonly since: number;
        readonly down: boolean;
        readonly incarnation: number | undefined;
      }
    | undefined;

  constructor(
    private readonly world: {
      readonly sim: SimClock;
      readonly coord: MemoryCoordinator;
      readonly slots: readonly NodeSlot[];
    },
    /** Fails the run (see `SimChecker.violation`). */
    private readonly violation: (invariant: string, message: string) => void,
  ) {}

  /**
   * Invariant, checked after every turn: no node holds the leader key for longer than one TTL
   * (+ {@link LEADER_KEY_SLACK_MS}) while it is not a running primary (partitioned, a standby,
   * or promoting: promotion gives the lease up within one TTL), nor for longer than one TTL
   * after it went down (crashed, paused, or cut off from etcd, so that it can neither keep the
   * lease alive nor give it up): its last keep-alive was at most then, as with etcd, so the
   * count starts again when the holder goes down.
   */
  check(): void {
    const holder = this.world.coord.currentLeader();
    const slot = holder === null ? undefined : this.world.slots.find((s) => s.id === holder.nodeId);
    const serving =
      slot !== undefined && !slot.crashed && !slot.paused && slot.runtime?.role === 'primary';
    if (holder === null || serving) {
      this.#keyNotServing = undefined;
      return;
    }
    const now = this.world.sim.now();
    const down = slot === undefined || slot.crashed || slot.paused || slot.etcdCut;
    // A holder restarted within one turn (crashed and started again, as the wrongKey step does)
    // went down too: its old incarnation's last keep-alive was at most then.
    const incarnation = slot?.incarnation;
    if (
      this.#keyNotServing?.nodeId !== holder.nodeId ||
      (down && !this.#keyNotServing.down) ||
      this.#keyNotServing.incarnation !== incarnation
    ) {
      this.#keyNotServing = { nodeId: holder.nodeId, since: now, down, incarnation };
    }
    const held = now - this.#keyNotServing.since;
    if (held > SIM_TTL_MS + LEADER_KEY_SLACK_MS) {
      const state =
        slot === undefined
          ? 'unknown'
          : slot.crashed
            ? 'crashed'
            : slot.paused
              ? 'paused'
              : (slot.runtime?.role ?? 'none');
      this.violation(
        'the leader key is held only by a running primary, but for one TTL',
        `${holder.nodeId} (${state}) has held the leader key for ${held} ms without serving`,
      );
    }
  }
}
