/** An invariant broke: what, and the trace that led there. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(
    readonly invariant: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${invariant}: ${message}`, options);
  }
}
