import type { ReplyFate } from '../../src/adapters/memory/memoryApiTransport.ts';
import type { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import type { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import type { SimClock } from '../../src/adapters/memory/simClock.ts';
import type { NodeSlot } from './nodeSlot.ts';

/**
 * The faults a schedule injects into the simulated cluster: paused nodes, nodes cut off from
 * etcd, NATS or the log's acknowledgements, clocks that drift or step, and lost or late replies
 * on the API bus. Node `i` is the schedule's (see `SimWorld.markFirstPrimary`).
 */
export class SimFaults {
  /** Reply loss rate of the API bus, in [0, 1). */
  lossRate = 0;

  constructor(
    private readonly world: {
      readonly sim: SimClock;
      readonly coord: MemoryCoordinator;
      readonly store: MemoryLogStore;
      readonly slots: readonly NodeSlot[];
      readonly random: () => number;
      /** The slot of the schedule's node `i`. */
      slot(i: number): NodeSlot;
    },
  ) {}

  /** Pause: the node processes nothing while time passes (timers, log, etcd and requests held). */
  pause(i: number): void {
    const slot = this.world.slot(i);
    if (slot.crashed || slot.paused) return;
    slot.paused = true;
    slot.clock.pause();
    this.applyCuts(slot);
  }

  /** Resume with stale beliefs: held requests first, then the held timers. */
  resume(i: number): void {
    const slot = this.world.slot(i);
    if (!slot.paused) return;
    slot.paused = false;
    this.applyCuts(slot);
    for (const run of slot.held.splice(0)) run();
    // What the node had in flight goes out first; its timers run a moment later.
    const clock = slot.clock;
    this.world.sim.setTimeout(() => {
      if (!slot.paused) clock.resume();
    }, 0);
  }

  cut(i: number, what: 'etcd' | 'nats' | 'both' | 'acks'): void {
    const slot = this.world.slot(i);
    if (what === 'etcd' || what === 'both') slot.etcdCut = true;
    if (what === 'nats' || what === 'both') slot.natsCut = true;
    if (what === 'acks') slot.acksCut = true;
    this.applyCuts(slot);
  }

  /** Whether a clock ran beyond the margin the lease reads rely on ({@link SimFaults.drift}). */
  get driftBeyondMargin(): boolean {
    return this.world.slots.some((s) => s.drifted);
  }

  /**
   * Node `i`'s clock runs at `rate` from now on, beyond the +-5 % the design allows (a broken
   * clock source, a VM whose time runs slow). A primary whose clock runs slow believes its
   * lease longer than etcd keeps it, so reads it answers may be stale: that is the documented
   * limit of lease reads (docs/client-contract.md, "Monotonic time"). It is stale only once
   * etcd let that lease go: while etcd still holds its leader key of the epoch it answers in,
   * nobody else can have been elected since. A clock that runs fast ends the lease early: its
   * reads are safe. The margin holds for every other node: a primary whose clock keeps within it
   * stops answering before etcd lets its lease go, whatever another node's clock does. So the
   * world checks every read but those a slow node answers without holding the leader key (their
   * linearizability: a client call during which it answered such a read is left out of the
   * history; that a fenced node answers none; read leases across a promotion), and read leases
   * across a promotion a drifted node makes (a clock running fast waits less than the TTL).
   */
  drift(i: number, rate: number): void {
    const slot = this.world.slot(i);
    slot.drifted = true;
    slot.clock.setRate(rate);
  }

  /** Steps node `i`'s wall clock by `ms` (negative: back), as NTP would; its monotonic clock runs on. */
  stepWall(i: number, ms: number): void {
    this.world.slot(i).clock.stepWall(ms);
  }

  /** Ends a NATS partition of the node (other cuts stay). */
  reconnectNats(i: number): void {
    const slot = this.world.slot(i);
    slot.natsCut = false;
    this.applyCuts(slot);
  }

  heal(i: number): void {
    const slot = this.world.slot(i);
    slot.etcdCut = false;
    slot.natsCut = false;
    slot.acksCut = false;
    this.applyCuts(slot);
  }

  /** Applies `slot`'s faults to its connections: etcd (the coordinator) and the log (the store). */
  applyCuts(slot: NodeSlot): void {
    const { id } = slot;
    if (slot.paused || slot.etcdCut) this.world.coord.partition(id);
    else if (this.world.coord.isPartitioned(id)) this.world.coord.heal(id);
    // A heal ends both a partition and dropped acks, and wakes what waited: heal only when a
    // partition ends (dropped acks matter only when the node is reachable).
    const partitioned = slot.paused || slot.natsCut;
    const wasPartitioned = this.world.store.isPartitioned(id);
    if (
      (wasPartitioned && !partitioned) ||
      (!partitioned && !slot.acksCut && this.world.store.acksDropped(id))
    ) {
      this.world.store.heal(id);
    }
    if (partitioned && !wasPartitioned) this.world.store.partition(id);
    if (slot.acksCut && !this.world.store.acksDropped(id)) this.world.store.dropAcks(id);
  }

  /** Replies still to drop (see {@link SimFaults.dropReplies}). */
  #dropNext = 0;

  /** The next `count` replies on the bus are lost: the requests are served, the answers never arrive. */
  dropReplies(count: number): void {
    this.#dropNext += count;
  }

  /** What becomes of the next reply on the API bus. */
  fate(): ReplyFate {
    if (this.#dropNext > 0) {
      this.#dropNext--;
      return { kind: 'drop' };
    }
    if (this.lossRate <= 0) return { kind: 'deliver' };
    const r = this.world.random();
    if (r >= this.lossRate) return { kind: 'deliver' };
    const which = Math.floor((r / this.lossRate) * 3);
    if (which === 0) return { kind: 'drop' };
    if (which === 1) return { kind: 'dropRequest' };
    return { kind: 'delay', ms: 50 + Math.floor(this.world.random() * 600) };
  }

  /** Ends the faults of the API bus: every reply is delivered from now on. */
  endBusFaults(): void {
    this.lossRate = 0;
    this.#dropNext = 0;
  }
}
