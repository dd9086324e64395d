/** An event that cannot be folded: out of sequence, or inconsistent with the state. */
export class FoldError extends Error {
  override readonly name = 'FoldError';
  readonly retryable = false;
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
