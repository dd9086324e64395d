/**
 * Which error class carries each wire code, and so whether the code is retryable: the class
 * states it (its `retryable`), and the wire and the client read it from here. Nothing else
 * says which codes are retryable.
 */
import { DomainError } from '../domain/model/errors.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';
import {
  NoRespondersError,
  RequestTooLargeError,
  TransportClosedError,
  TransportTimeoutError,
  TransportUnavailableError,
} from '../ports/apiTransport.ts';
import { NotPrimaryError } from '../ports/metadataService.ts';
import type { ApiErrorCode } from './wire.ts';

/** A request the server cannot read: not JSON, wrong shape or types, unknown op. */
export class BadRequestError extends UnderstudyError {
  override readonly name = 'BadRequestError';
  readonly code = 'BAD_REQUEST';
  override readonly retryable = false;
}

/** A bug on the server: the same request fails the same way. */
export class InternalError extends UnderstudyError {
  override readonly name = 'InternalError';
  readonly code = 'INTERNAL';
  override readonly retryable = false;
}

/** For every wire code, an error of the class that carries it. */
const CARRIERS: Readonly<Record<ApiErrorCode, () => UnderstudyError>> = {
  INVALID_ARGUMENT: () => new DomainError('INVALID_ARGUMENT', ''),
  OBJECT_EXISTS: () => new DomainError('OBJECT_EXISTS', ''),
  OBJECT_NOT_FOUND: () => new DomainError('OBJECT_NOT_FOUND', ''),
  SEGMENT_EXISTS: () => new DomainError('SEGMENT_EXISTS', ''),
  SEGMENT_NOT_FOUND: () => new DomainError('SEGMENT_NOT_FOUND', ''),
  NO_SPACE: () => new DomainError('NO_SPACE', ''),
  NOT_ENOUGH_NODES: () => new DomainError('NOT_ENOUGH_NODES', ''),
  INVALID_STATE: () => new DomainError('INVALID_STATE', ''),
  LEASED: () => new DomainError('LEASED', ''),
  REQUEST_EXPIRED: () => new DomainError('REQUEST_EXPIRED', ''),
  BAD_REQUEST: () => new BadRequestError(''),
  REQUEST_TOO_LARGE: () => new RequestTooLargeError('', 0, 0),
  NOT_PRIMARY: () => new NotPrimaryError(''),
  TIMEOUT: () => new TransportTimeoutError('', 0),
  NO_RESPONDERS: () => new NoRespondersError(''),
  UNAVAILABLE: () => new TransportUnavailableError('', ''),
  CLOSED: () => new TransportClosedError(''),
  INTERNAL: () => new InternalError(''),
};

/** Every wire code and the class that carries it (for tests and docs). */
export function wireCodeCarrier(code: ApiErrorCode): UnderstudyError {
  return CARRIERS[code]();
}

/** Whether each wire code is retryable, as its class says. */
export const WIRE_CODE_RETRYABLE: Readonly<Record<ApiErrorCode, boolean>> = Object.freeze(
  Object.fromEntries(
    Object.entries(CARRIERS).map(([code, carrier]) => [code, carrier().retryable]),
  ) as Record<ApiErrorCode, boolean>,
);

/** The codes a client retries. */
export const RETRYABLE_CODES: ReadonlySet<ApiErrorCode> = new Set(
  (Object.keys(WIRE_CODE_RETRYABLE) as ApiErrorCode[]).filter((c) => WIRE_CODE_RETRYABLE[c]),
);

/** Whether a wire code is retryable. */
export function isRetryableCode(code: ApiErrorCode): boolean {
  return WIRE_CODE_RETRYABLE[code];
}

/** The transport errors the client turns into their wire code (others become `UNAVAILABLE`). */
const TRANSPORT_ERRORS = [
  TransportTimeoutError,
  NoRespondersError,
  TransportUnavailableError,
  RequestTooLargeError,
  TransportClosedError,
] as const;

/** The wire code and retryability of a transport failure, from its class. */
export function transportFailure(err: unknown): {
  readonly code: ApiErrorCode;
  readonly retryable: boolean;
  readonly limit?: number;
} {
  for (const Carrier of TRANSPORT_ERRORS) {
    if (!(err instanceof Carrier)) continue;
    return {
      code: err.code,
      retryable: err.retryable,
      ...(err instanceof RequestTooLargeError ? { limit: err.limit } : {}),
    };
  }
  return { code: 'UNAVAILABLE', retryable: isRetryableCode('UNAVAILABLE') };
}
