// A follower passed over a message signed under another OpLog key: a forgery (anyone who can
// publish to the subject can claim any key id), or the cluster moved to another key and this
// node can read nothing more. The cluster's record (etcd) tells which.
import { OplogKeyMismatchError } from './oplogKeyCheck.ts';
import type { TimerHandle } from '../ports/clock.ts';
import type { LogBatch } from '../ports/opLog.ts';
import type { NodeRuntimeDeps } from './nodeRuntimeConfig.ts';

/** How often at most the record is read again after it said the cluster's key is this node's. */
const RECHECK_MS = 5_000;

/** How soon a read of the record that failed (etcd unreachable) is tried again. */
export const KEY_CHECK_RETRY_MS = 1_000;

/**
 * Reads the cluster's recorded key id when a passed-over message names another key, at most one
 * read at a time and one every {@link RECHECK_MS} after a read that found this node's key (a
 * forger's flood costs one read each); calls `onMismatch` once when the record is not this node's
 * key id. A read that fails is tried again every {@link KEY_CHECK_RETRY_MS} until one answers:
 * the message that raised the question may be the last for a while, and a node that cannot read
 * the cluster's messages must not wait for the next one to learn it (found by the simulation: a
 * wrong-key standby passed over the new primary's fence while etcd was cut off, and stayed a
 * standby one entry behind for good).
 */
export class OtherKeyWatch {
  #reading = false;
  #readAt = Number.NEGATIVE_INFINITY;
  #mismatch: OplogKeyMismatchError | undefined;
  #retry: TimerHandle | undefined;
  /** The last read failed: the next failure is not logged again. */
  #failing = false;
  #stopped = false;

  constructor(
    private readonly deps: Pick<NodeRuntimeDeps, 'clusterKey' | 'clock' | 'logger'>,
    private readonly onMismatch: (err: OplogKeyMismatchError) => void,
  ) {}

  /** The mismatch found, if one was. */
  get mismatch(): OplogKeyMismatchError | undefined {
    return this.#mismatch;
  }

  /**
   * Reads the cluster's record before this node promotes, and rejects with
   * {@link OplogKeyMismatchError} (calling `onMismatch`) when it is not this node's key id. A
   * node that restored its state from a checkpoint and has read no primary's message since
   * passed over nothing, so only the record tells it that its key is not the cluster's: as
   * primary it would sign its fence and every write under a key the other members cannot read,
   * and its acknowledged writes would be lost to them. A record that cannot be read fails the
   * promotion (the machine campaigns again later).
   */
  async beforePromotion(): Promise<void> {
    const check = this.deps.clusterKey;
    if (check === undefined) return;
    const known = this.#mismatch;
    if (known !== undefined) throw known;
    const mismatch = this.#judge(await check.clusterKeyId());
    if (mismatch !== undefined) throw mismatch;
  }

  /**
   * The mismatch when the cluster's `recorded` key id is not this node's (found once: the first
   * one calls `onMismatch`); undefined when it is, or when nothing is recorded.
   */
  #judge(recorded: string | undefined): OplogKeyMismatchError | undefined {
    const check = this.deps.clusterKey;
    if (check === undefined || recorded === undefined || recorded === check.keyId) return undefined;
    if (this.#mismatch === undefined) {
      this.#mismatch = new OplogKeyMismatchError(
        check.cluster,
        check.keyId,
        recorded,
        check.recordedAt,
      );
      this.onMismatch(this.#mismatch);
    }
    return this.#mismatch;
  }

  /** Called with every batch a follower passed over (once each). */
  passedOver(batch: LogBatch): void {
    if (batch.signedUnder === undefined) return;
    this.#check();
  }

  /** Stops the retries (the node stops). */
  stop(): void {
    this.#stopped = true;
    this.#retry?.clear();
    this.#retry = undefined;
  }

  #check(): void {
    const check = this.deps.clusterKey;
    if (check === undefined || this.#stopped) return;
    if (this.#reading || this.#retry !== undefined || this.#mismatch !== undefined) return;
    const now = this.deps.clock.monotonicNow();
    if (now - this.#readAt < RECHECK_MS) return;
    this.#reading = true;
    check.clusterKeyId().then(
      (recorded) => {
        this.#reading = false;
        this.#failing = false;
        this.#readAt = this.deps.clock.monotonicNow();
        this.#judge(recorded);
      },
      (err: unknown) => {
        this.#reading = false;
        if (this.#stopped) return;
        if (!this.#failing) {
          this.deps.logger.warn(
            { event: 'oplogKeyCheckFailed', err: String(err) },
            `cannot read the cluster's OpLog key id; trying again every ${KEY_CHECK_RETRY_MS} ms`,
          );
        }
        this.#failing = true;
        this.#retry = this.deps.clock.setTimeout(() => {
          this.#retry = undefined;
          this.#check();
        }, KEY_CHECK_RETRY_MS);
      },
    );
  }
}
