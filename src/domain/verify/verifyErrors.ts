/**
 * The errors of verification: a malformed request or argument, and a repair that cannot apply.
 */
import { UnderstudyError } from '../model/understudyError.ts';

/** A bad argument or a malformed verification request: names the field and the limit. */
export class VerifyInputError extends UnderstudyError {
  override readonly name = 'VerifyInputError';
  readonly code = 'VERIFY_INPUT';
  override readonly retryable = false;
  constructor(
    readonly field: string,
    readonly limit: string | number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`invalid ${field}: ${message} (limit ${limit})`, options);
  }
}

/**
 * Corrections that cannot be applied consistently (a replica on a segment the standby does not
 * have, overlapping ranges, a record newer than the verified state). The standby's state is
 * beyond repair in place: it needs a full sync. Nothing was changed.
 */
export class RepairError extends UnderstudyError {
  override readonly name = 'RepairError';
  readonly code = 'REPAIR_FAILED';
  override readonly retryable = false;
  constructor(
    /** The key whose correction failed, when one did. */
    readonly key: string | undefined,
    /** The segment that could not be made consistent, when one could not. */
    readonly segmentId: string | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
