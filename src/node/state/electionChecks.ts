import {
  ElectionVerdicts,
  type ElectedCheck,
  type ElectionClaim,
} from '../../domain/log/admission.ts';
import type { LogBatch } from '../../ports/opLog.ts';
import type { LogEnvelope } from '../nodeDomain.ts';
import type { NodeRuntimeDeps } from '../nodeRuntimeConfig.ts';

/**
 * The verdicts on `EPOCH` entries' election claims, asked of the coordinator once each (see
 * domain/log/admission.ts). The coordinator keeps a record of every election it holds, so its
 * answer for a claim is the same whenever it is asked: every node that meets a fence judges it
 * alike, and a fence no record confirms is foreign.
 */
export class ElectionChecks {
  readonly #verdicts = new ElectionVerdicts();

  constructor(
    private readonly deps: Pick<NodeRuntimeDeps, 'elector' | 'clock' | 'logger'>,
    private readonly retryDelayMs: number,
    private readonly log: Pick<LogEnvelope<unknown>, 'fenceOp' | 'fenceOf' | 'fromEntry'>,
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
      if (entry.op !== this.log.fenceOp || entry.seq <= state.appliedSeq) continue;
      const claim = this.log.fenceOf(this.log.fromEntry(entry).event);
      if (claim === undefined || claim.epoch <= state.epoch) continue;
      if (!this.#verdicts.has(claim)) await this.#ask(claim, batch.streamSeq, stopped);
    }
  }

  async #ask(claim: ElectionClaim, streamSeq: number, stopped: () => boolean): Promise<void> {
    const { elector, clock, logger } = this.deps;
    let failing = false;
    while (!stopped()) {
      try {
        const verdict = await elector.election(claim.epoch, claim.nodeId);
        this.#verdicts.set(claim, verdict.kind === 'elected');
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
