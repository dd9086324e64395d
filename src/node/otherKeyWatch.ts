// A follower passed over a message signed under another OpLog key: a forgery (anyone who can
// publish to the subject can claim any key id), or the cluster moved to another key and this
// node can read nothing more. The cluster's record (etcd) tells which.
import { OplogKeyMismatchError } from './oplogKeyCheck.ts';
import type { LogBatch } from '../ports/opLog.ts';
import type { NodeRuntimeDeps } from './nodeRuntimeConfig.ts';

/** How often at most the record is read again after it said the cluster's key is this node's. */
const RECHECK_MS = 5_000;

/**
 * Reads the cluster's recorded key id when a passed-over message names another key, at most one
 * read at a time and one every {@link RECHECK_MS} (a forger's flood costs one read each); calls
 * `onMismatch` once when the record is not this node's key id.
 */
export class OtherKeyWatch {
  #reading = false;
  #readAt = Number.NEGATIVE_INFINITY;
  #mismatch: OplogKeyMismatchError | undefined;

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
    const recorded = await check.clusterKeyId();
    if (recorded === undefined || recorded === check.keyId) return;
    const mismatch =
      this.#mismatch ??
      new OplogKeyMismatchError(check.cluster, check.keyId, recorded, check.recordedAt);
    if (this.#mismatch === undefined) {
      this.#mismatch = mismatch;
      this.onMismatch(mismatch);
    }
    throw mismatch;
  }

  /** Called with every batch a follower passed over (once each). */
  passedOver(batch: LogBatch): void {
    const check = this.deps.clusterKey;
    if (batch.signedUnder === undefined || check === undefined) return;
    if (this.#reading || this.#mismatch !== undefined) return;
    const now = this.deps.clock.monotonicNow();
    if (now - this.#readAt < RECHECK_MS) return;
    this.#reading = true;
    this.#readAt = now;
    check.clusterKeyId().then(
      (recorded) => {
        this.#reading = false;
        if (recorded === undefined || recorded === check.keyId) return;
        this.#mismatch = new OplogKeyMismatchError(
          check.cluster,
          check.keyId,
          recorded,
          check.recordedAt,
        );
        this.onMismatch(this.#mismatch);
      },
      (err: unknown) => {
        this.#reading = false;
        this.deps.logger.warn(
          { event: 'oplogKeyCheckFailed', err: String(err) },
          "cannot read the cluster's OpLog key id; checking again at the next such message",
        );
      },
    );
  }
}
