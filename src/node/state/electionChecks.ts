import {
  ElectionVerdicts,
  type ElectedCheck,
  type ElectionClaim,
} from '../../domain/log/admission.ts';
import { fromEntry } from '../../domain/log/eventCodec.ts';
import type { LogBatch } from '../../ports/opLog.ts';
import type { NodeRuntimeDeps } from '../nodeRuntimeConfig.ts';

/**
 * The verdicts on `EPOCH` entries' election claims, asked of the coordinator once each (see
 * domain/log/admission.ts). A claim etcd can no longer check (its revision compacted away) counts,
 * with a warning: an entry the log has held that long was folded by every node that followed it.
 */
export class ElectionChecks {
  readonly #verdicts = new ElectionVerdicts();

  constructor(
    private readonly deps: Pick<NodeRuntimeDeps, 'elector' | 'clock' | 'logger'>,
    private readonly retryDelayMs: number,
  ) {}

  /** Whether a claim settled by {@link settle} is a real election. */
  readonly elected: ElectedCheck = this.#verdicts.elected;

  /**
   * Settles the claims of the `EPOCH` entries in `batch` after `appliedSeq` whose epoch is above
   * `epoch` (the others are foreign whatever the coordinator says). Retries while the coordinator
   * cannot be reached, until `stopped()`.
   */
  async settle(
    batch: LogBatch,
    state: { readonly appliedSeq: number; readonly epoch: number },
    stopped: () => boolean,
  ): Promise<void> {
    for (const entry of batch.entries) {
      if (entry.op !== 'EPOCH' || entry.seq <= state.appliedSeq) continue;
      const { event } = fromEntry(entry);
      if (event.op !== 'EPOCH' || event.epoch <= state.epoch) continue;
      const claim = { epoch: event.epoch, nodeId: event.nodeId };
      if (!this.#verdicts.has(claim)) await this.#ask(claim, batch.streamSeq, stopped);
    }
  }

  async #ask(claim: ElectionClaim, streamSeq: number, stopped: () => boolean): Promise<void> {
    const { elector, clock, logger } = this.deps;
    let failing = false;
    while (!stopped()) {
      try {
        const verdict = await elector.election(claim.epoch, claim.nodeId);
        if (verdict.kind === 'unverifiable') {
          logger.warn(
            { event: 'epochUnverified', streamSeq, ...claim, why: verdict.why },
            `the election of epoch ${claim.epoch} cannot be checked any more; its fence counts`,
          );
        }
        this.#verdicts.set(claim, verdict.kind !== 'notElected');
        return;
      } catch (err) {
        if (!failing) {
          logger.warn(
            { event: 'epochCheckRetry', streamSeq, ...claim, err: String(err) },
            'cannot check an EPOCH fence against the coordinator; retrying',
          );
        }
        failing = true;
        await new Promise<void>((resolve) => clock.setTimeout(resolve, this.retryDelayMs));
      }
    }
  }
}
