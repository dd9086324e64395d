/**
 * The wire format of the client API: UTF-8 JSON. A request body is the JSON of the operation's
 * request object (see schema.ts). A reply is `{"ok":true,"result":...}` or
 * `{"ok":false,"error":{code,message,retryable,field?,limit?,details?}}`.
 */
import { z } from 'zod';
import type { DomainErrorCode } from '../domain/model/errors.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';
import { isRetryableCode } from './wireCodes.ts';

/** Largest request body the server parses, in bytes; larger ones get `REQUEST_TOO_LARGE`. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/**
 * Every code an {@link ApiError} can carry:
 * - the domain codes (the command was refused; not retryable),
 * - `BAD_REQUEST`: not JSON, wrong shape or types, unknown op,
 * - `REQUEST_TOO_LARGE`: the body is over {@link MAX_REQUEST_BYTES} (or the transport's limit),
 * - `NOT_PRIMARY` (retryable): the node that answered does not serve (fenced, handing over),
 * - `TIMEOUT`, `NO_RESPONDERS`, `UNAVAILABLE` (retryable, client side): no answer, nobody
 *   serving, transport disconnected,
 * - `CLOSED` (client side): the client was closed,
 * - `INTERNAL`: a bug on the server.
 */
export type ApiErrorCode =
  | DomainErrorCode
  | 'BAD_REQUEST'
  | 'REQUEST_TOO_LARGE'
  | 'NOT_PRIMARY'
  | 'TIMEOUT'
  | 'NO_RESPONDERS'
  | 'UNAVAILABLE'
  | 'CLOSED'
  | 'INTERNAL';

export const API_ERROR_CODES = [
  'INVALID_ARGUMENT',
  'OBJECT_EXISTS',
  'OBJECT_NOT_FOUND',
  'SEGMENT_EXISTS',
  'SEGMENT_NOT_FOUND',
  'NO_SPACE',
  'NOT_ENOUGH_NODES',
  'INVALID_STATE',
  'LEASED',
  'REQUEST_EXPIRED',
  'BAD_REQUEST',
  'REQUEST_TOO_LARGE',
  'NOT_PRIMARY',
  'TIMEOUT',
  'NO_RESPONDERS',
  'UNAVAILABLE',
  'CLOSED',
  'INTERNAL',
] as const satisfies readonly ApiErrorCode[];

/** The codes a client retries: derived from the error classes that carry them. */
export { RETRYABLE_CODES } from './wireCodes.ts';

/** An error as it travels on the wire. */
export interface WireError {
  readonly code: ApiErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly field?: string;
  readonly limit?: number | string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export const wireErrorSchema = z.object({
  code: z.enum(API_ERROR_CODES),
  message: z.string(),
  retryable: z.boolean(),
  field: z.string().optional(),
  limit: z.union([z.number(), z.string()]).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** A reply on the wire. */
export type WireReply<T> =
  { readonly ok: true; readonly result: T } | { readonly ok: false; readonly error: WireError };

/** The envelope of every reply; the result is checked per op (schema.ts). */
export const wireReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), error: wireErrorSchema }),
]);

/**
 * A failed API call, as the client library throws it: the wire code, whether retrying can
 * help, the field and limit a bad request broke, and details (for `OBJECT_EXISTS`:
 * `{ replicas, complete }`, the existing placement; read it with `objectExistsDetails`).
 */
export class ApiError extends UnderstudyError {
  override readonly name: string = 'ApiError';
  readonly code: ApiErrorCode;
  override readonly retryable: boolean;
  readonly field?: string;
  readonly limit?: number | string;
  readonly details?: Readonly<Record<string, unknown>>;

  /**
   * `retryable` is what the server said for an error read off the wire; left out, it is the
   * code's (see `wireCodes.ts`).
   */
  constructor(
    wire: {
      readonly [K in keyof WireError as K extends 'retryable' ? never : K]:
        WireError[K] | (undefined extends WireError[K] ? undefined : never);
    } & { readonly retryable?: boolean | undefined },
    options?: ErrorOptions,
  ) {
    super(wire.message, options);
    this.code = wire.code;
    this.retryable = wire.retryable ?? isRetryableCode(wire.code);
    if (wire.field !== undefined) this.field = wire.field;
    if (wire.limit !== undefined) this.limit = wire.limit;
    if (wire.details !== undefined) this.details = wire.details;
  }

  /** The wire form of this error. */
  toWire(): WireError {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.limit === undefined ? {} : { limit: this.limit }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The UTF-8 JSON bytes of `value`. */
export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parses UTF-8 JSON bytes; throws (TypeError or SyntaxError) on bad UTF-8 or bad JSON. */
export function decodeJson(bytes: Uint8Array): unknown {
  return JSON.parse(decoder.decode(bytes));
}

/** The bytes of a successful reply. */
export function encodeOk(result: unknown): Uint8Array {
  return encodeJson({ ok: true, result });
}

/** The bytes of a failed reply. */
export function encodeError(error: WireError): Uint8Array {
  return encodeJson({ ok: false, error });
}
