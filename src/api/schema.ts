/**
 * Request and response schemas of the client API (zod). Requests are strict objects: an
 * unknown field is a `BAD_REQUEST`. The schemas check shape and types only; the domain
 * (`decide`) checks every value against the limits of `domain/model/limits.ts` and answers
 * `INVALID_ARGUMENT` naming the field and the limit, so there is one place that knows them.
 * Responses are read leniently (unknown fields are dropped) so servers can add fields.
 */
import { z } from 'zod';
import { wireErrorSchema } from './wire.ts';

/** Most items in one `putStartBatch` or keys in one `putEndBatch`. */
export const MAX_BATCH_ITEMS = 1000;

const key = z.string();
const count = z.number();

/**
 * The client session of a write (exactly-once): `id` is 32 lowercase hex digits (128 random
 * bits), `requestNo` the call's number in the session (1, 2, ...; a retry sends the same one;
 * a batch's items get `requestNo`, `requestNo + 1`, ...), `oldestPending` the lowest number the
 * client still waits for an answer to. A request already applied gets its original result; one
 * below the session's `oldestPending` is refused with `REQUEST_EXPIRED`. Optional: a write
 * without it is not deduplicated.
 */
export const sessionField = z.strictObject({
  id: z.string(),
  requestNo: count,
  oldestPending: count,
});
export type SessionField = z.infer<typeof sessionField>;
const session = sessionField.optional();

export const mountSegmentRequest = z.strictObject({
  segmentId: z.string(),
  nodeId: z.string(),
  size: count,
  /** The first byte of the range mounted (a group's slice of the segment); absent means 0. */
  base: count.optional(),
  session,
});
export const unmountSegmentRequest = z.strictObject({ segmentId: z.string(), session });
const putStartItem = z.strictObject({ key, size: count, replicaNum: count });
export const putStartRequest = z.strictObject({ key, size: count, replicaNum: count, session });
export const keyWriteRequest = z.strictObject({ key, session });
export const keyRequest = z.strictObject({ key });
export const putStartBatchRequest = z.strictObject({
  items: z.array(putStartItem).max(MAX_BATCH_ITEMS),
  session,
});
export const putEndBatchRequest = z.strictObject({
  keys: z.array(key).max(MAX_BATCH_ITEMS),
  session,
});

/**
 * `writeBatch`: write calls of any op, each with its own request number (see writeBatch.ts,
 * which checks each item on its own; this schema is the envelope's shape only).
 */
export const writeBatchRequest = z.strictObject({
  items: z.array(z.unknown()).max(MAX_BATCH_ITEMS),
  session: z.strictObject({ id: z.string(), oldestPending: count }).optional(),
});

/** The request schema of every op. */
export const requestSchemas = {
  mountSegment: mountSegmentRequest,
  unmountSegment: unmountSegmentRequest,
  putStart: putStartRequest,
  putEnd: keyWriteRequest,
  putRevoke: keyWriteRequest,
  remove: keyWriteRequest,
  get: keyRequest,
  exists: keyRequest,
  putStartBatch: putStartBatchRequest,
  putEndBatch: putEndBatchRequest,
  writeBatch: writeBatchRequest,
} as const;

/** The operations of the client API. */
export type ApiOp = keyof typeof requestSchemas;
export const API_OPS = Object.keys(requestSchemas) as ApiOp[];

/** True when `op` names an operation of the API. */
export function isApiOp(op: string): op is ApiOp {
  return Object.hasOwn(requestSchemas, op);
}

export type ApiRequest<Op extends ApiOp> = z.infer<(typeof requestSchemas)[Op]>;
export type PutStartItem = z.infer<typeof putStartItem>;

export const replicaSchema = z.object({
  segmentId: z.string(),
  nodeId: z.string(),
  offset: z.number(),
  length: z.number(),
  status: z.enum(['processing', 'complete']),
});

/** A committed command: the seq of its log entry. */
export const ackSchema = z.object({ seq: z.number() });
/** A committed putStart: where to write the replicas. */
export const placementSchema = z.object({
  key: z.string(),
  size: z.number(),
  replicas: z.array(replicaSchema),
  seq: z.number(),
});
/** An object record; reading it granted a read lease on the key. */
export const objectRecordSchema = z.object({
  key: z.string(),
  size: z.number(),
  replicas: z.array(replicaSchema),
  lastSeq: z.number(),
});
export const existsSchema = z.object({ exists: z.boolean() });

function batchOf<T extends z.ZodType>(result: T) {
  return z.object({
    results: z.array(
      z.discriminatedUnion('ok', [
        z.object({ ok: z.literal(true), result }),
        z.object({ ok: z.literal(false), error: wireErrorSchema }),
      ]),
    ),
  });
}

/** The result schema of every op. */
export const responseSchemas = {
  mountSegment: ackSchema,
  unmountSegment: ackSchema,
  putStart: placementSchema,
  putEnd: ackSchema,
  putRevoke: ackSchema,
  remove: ackSchema,
  get: objectRecordSchema,
  exists: existsSchema,
  putStartBatch: batchOf(placementSchema),
  putEndBatch: batchOf(ackSchema),
  /** One result per item, each of its own op's result schema (read by the client per item). */
  writeBatch: batchOf(z.unknown()),
} as const satisfies Record<ApiOp, z.ZodType>;

export type ApiResponse<Op extends ApiOp> = z.infer<(typeof responseSchemas)[Op]>;
export type Ack = z.infer<typeof ackSchema>;
export type Placement = z.infer<typeof placementSchema>;

/** `details` of an `OBJECT_EXISTS` error: the existing placement and whether it is complete. */
export const objectExistsDetailsSchema = z.object({
  replicas: z.array(replicaSchema),
  complete: z.boolean(),
});
export type ObjectExistsDetails = z.infer<typeof objectExistsDetailsSchema>;
