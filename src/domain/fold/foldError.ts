import { UnderstudyError } from '../model/understudyError.ts';
/** An event that cannot be folded: out of sequence, or inconsistent with the state. */
export class FoldError extends UnderstudyError {
  override readonly name = 'FoldError';
  readonly code = 'FOLD_REFUSED';
  override readonly retryable = false;
  constructor(
    /** The seq the state expected next (appliedSeq + 1). */
    readonly expectedSeq: number,
    /** The seq of the event that was refused. */
    readonly gotSeq: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`cannot fold seq ${gotSeq} (expected ${expectedSeq}): ${message}`, options);
  }
}
