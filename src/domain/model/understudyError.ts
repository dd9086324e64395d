/**
 * The base of every error the project throws. A subclass sets `name`, passes `cause`, carries
 * typed fields (`expectedSeq`, `epoch`, ...) and states two things once:
 * - `code`: a stable identifier of the kind of failure (SCREAMING_SNAKE), the one a caller,
 *   a log line or the wire names it by;
 * - `retryable`: whether the same call can succeed when made again (later or elsewhere) with
 *   nothing else changed. False unless the class says otherwise.
 *
 * The client library and the API wire read retryability from here (see `src/api/wireCodes.ts`):
 * it is stated nowhere else.
 */
export abstract class UnderstudyError extends Error {
  /** The stable code of this kind of failure. */
  abstract readonly code: string;
  /** Whether retrying the same call can help. */
  readonly retryable: boolean = false;
}
