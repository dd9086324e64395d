import type { Replica } from './types.ts';
import { UnderstudyError } from './understudyError.ts';

export type DomainErrorCode =
  | 'INVALID_ARGUMENT'
  | 'OBJECT_EXISTS'
  | 'OBJECT_NOT_FOUND'
  | 'SEGMENT_EXISTS'
  | 'SEGMENT_NOT_FOUND'
  | 'NO_SPACE'
  | 'NOT_ENOUGH_NODES'
  | 'INVALID_STATE'
  | 'LEASED'
  | 'REQUEST_EXPIRED';

export interface DomainErrorDetails {
  readonly field?: string;
  readonly limit?: number | string;
  readonly cause?: unknown;
}

/**
 * A command the domain refused. It names the field and the limit when the input was bad;
 * a refused command changes nothing. Not retryable: the same command against the same state
 * fails the same way.
 */
export class DomainError extends UnderstudyError {
  override readonly name: string = 'DomainError';
  override readonly retryable = false;
  readonly field?: string;
  readonly limit?: number | string;

  constructor(
    readonly code: DomainErrorCode,
    message: string,
    details: DomainErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    if (details.field !== undefined) this.field = details.field;
    if (details.limit !== undefined) this.limit = details.limit;
  }
}

/** putStart on a key that exists: carries the existing placement and whether it is complete. */
export class ObjectExistsError extends DomainError {
  override readonly name = 'ObjectExistsError';
  constructor(
    readonly key: string,
    readonly placement: readonly Replica[],
    readonly complete: boolean,
  ) {
    super(
      'OBJECT_EXISTS',
      `object ${JSON.stringify(key)} exists${complete ? '' : ' (put in progress)'}`,
      {
        field: 'key',
      },
    );
  }
}

/** A bad field: names the field and the limit it broke. */
export function invalidArgument(
  field: string,
  problem: string,
  limit?: number | string,
): DomainError {
  const suffix = limit === undefined ? '' : ` (limit ${limit})`;
  return new DomainError('INVALID_ARGUMENT', `invalid ${field}: ${problem}${suffix}`, {
    field,
    ...(limit === undefined ? {} : { limit }),
  });
}

export function objectNotFound(key: string): DomainError {
  return new DomainError('OBJECT_NOT_FOUND', `object ${JSON.stringify(key)} not found`, {
    field: 'key',
  });
}

export function segmentNotFound(segmentId: string): DomainError {
  return new DomainError('SEGMENT_NOT_FOUND', `segment ${JSON.stringify(segmentId)} not found`, {
    field: 'segmentId',
  });
}

export function segmentExists(segmentId: string): DomainError {
  return new DomainError(
    'SEGMENT_EXISTS',
    `segment ${JSON.stringify(segmentId)} is already mounted`,
    {
      field: 'segmentId',
    },
  );
}

export function invalidState(key: string, problem: string): DomainError {
  return new DomainError('INVALID_STATE', `object ${JSON.stringify(key)}: ${problem}`, {
    field: 'key',
  });
}

export function leased(key: string): DomainError {
  return new DomainError('LEASED', `object ${JSON.stringify(key)} has an active read lease`, {
    field: 'key',
  });
}

export function noSpace(size: number, replicaNum: number): DomainError {
  return new DomainError(
    'NO_SPACE',
    `no placement of ${replicaNum} replica(s) of ${size} bytes on distinct nodes fits`,
    { field: 'size', limit: size },
  );
}

export function notEnoughNodes(replicaNum: number, available: number): DomainError {
  return new DomainError(
    'NOT_ENOUGH_NODES',
    `replicaNum ${replicaNum} needs ${replicaNum} storage nodes with room, only ${available} have`,
    { field: 'replicaNum', limit: available },
  );
}

/**
 * A request number the session table no longer holds: below the oldest one the client said it
 * still waits for, or dropped past MAX_SESSION_RESULTS. Whether it was applied is unknown to
 * the caller; it is never applied (again).
 */
export function requestExpired(sessionId: string, requestNo: number, oldest: number): DomainError {
  return new DomainError(
    'REQUEST_EXPIRED',
    `request ${requestNo} of session ${sessionId} is older than the oldest the session keeps (${oldest}): its result is forgotten`,
    { field: 'requestNo', limit: oldest },
  );
}
