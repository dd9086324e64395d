/**
 * The fault switches of the shared in-memory stream (see {@link MemoryLogStore}): which node ids
 * are cut off, whose acknowledgements are lost and whose followers stall. The store consults
 * them; the node's side of the log ({@link createMemoryOpLog}) acts on them.
 *
 * Partitions: while a node id is partitioned its appends and `bounds()` wait (a message in
 * flight is not stored until the heal), and its followers stall; `heal` lets them continue.
 * With a clock and `timeoutMs` (see {@link MemoryOpLogOptions}) waiting calls fail instead.
 *
 * Lost acknowledgements: while a node id's acks are dropped (`dropAcks`), its appends are
 * stored (or fenced) but the writer never hears the outcome: with a clock and `timeoutMs`
 * they reject as {@link AmbiguousAppendError} although the entries may be in the log, which
 * is what a publish whose ack timed out looks like. `heal` ends it for later appends.
 */
export abstract class MemoryLogFaults {
  private readonly partitioned = new Set<string>();
  private readonly ackless = new Set<string>();
  private readonly followerStalls = new Map<string, number>();

  /** Cuts `nodeId` off: its appends and reads wait (or time out), its followers stall. */
  partition(nodeId: string): void {
    this.partitioned.add(nodeId);
  }

  /** Stores `nodeId`'s appends from now on without telling its writers (see the class doc). */
  dropAcks(nodeId: string): void {
    this.ackless.add(nodeId);
  }

  /** Reconnects `nodeId` (ends a partition and dropped acks): what waited goes on. */
  heal(nodeId: string): void {
    this.partitioned.delete(nodeId);
    this.ackless.delete(nodeId);
    this.notify();
  }

  /**
   * Every follower `nodeId` has open now stops delivering, silently and for good (it neither
   * yields nor ends), as an ordered consumer the server forgot; followers opened later work.
   */
  stallFollowers(nodeId: string): void {
    this.followerStalls.set(nodeId, this.stallCount(nodeId) + 1);
  }

  /** How many times `nodeId`'s followers were stalled (a follower remembers it at open). */
  stallCount(nodeId: string): number {
    return this.followerStalls.get(nodeId) ?? 0;
  }

  acksDropped(nodeId: string): boolean {
    return this.ackless.has(nodeId);
  }

  isPartitioned(nodeId: string): boolean {
    return this.partitioned.has(nodeId);
  }

  /** Tells the store's subscribers that something changed (a heal lets waiting calls go on). */
  protected abstract notify(): void;
}
