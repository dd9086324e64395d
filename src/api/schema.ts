/**
 * Request and response schemas of the client API (zod). Requests are strict objects: an
 * unknown field is a `BAD_REQUEST`. The schemas check shape and types only; the domain
 * (`decide`) checks every value against the limits of `domain/limits.ts` and answers
 * `INVALID_ARGUMENT` naming the field and the limit, so there is one place that knows them.
 * Responses are read leniently (unknown fields are dropped) so servers can add fields.
 */
import { z } from 'zod';
import { wireErrorSchema } from './wire.ts';

/** Most items in one `putStartBatch` or keys in one `putEndBatch`. */
export const MAX_BATCH_ITEMS = 1000;

const key = z.string();
const count = z.number();

export const mountSegmentRequest = z.strictObject({
  segmentId: z.string(),
  nodeId: z.string(),
  size: count,
});
export const unmountSegmentRequest = z.strictObject({ segmentId: z.string() });
export const putStartRequest = z.strictObject({ key, size: count, replicaNum: count });
export const keyRequest = z.strictObject({ key });
export const putStartBatchRequest = z.strictObject({
  items: z.array(putStartRequest).max(MAX_BATCH_ITEMS),
});
export const putEndBatchRequest = z.strictObject({ keys: z.array(key).max(MAX_BATCH_ITEMS) });

/** The request schema of every op. */
export const requestSchemas = {
  mountSegment: mountSegmentRequest,
  unmountSegment: unmountSegmentRequest,
  putStart: putStartRequest,
  putEnd: keyRequest,
  putRevoke: keyRequest,
  remove: keyRequest,
  get: keyRequest,
  exists: keyRequest,
  putStartBatch: putStartBatchRequest,
  putEndBatch: putEndBatchRequest,
} as const;

/** The operations of the client API. */
export type ApiOp = keyof typeof requestSchemas;
export const API_OPS = Object.keys(requestSchemas) as ApiOp[];

/** True when `op` names an operation of the API. */
export function isApiOp(op: string): op is ApiOp {
  return Object.hasOwn(requestSchemas, op);
}

export type ApiRequest<Op extends ApiOp> = z.infer<(typeof requestSchemas)[Op]>;
export type PutStartItem = z.infer<typeof putStartRequest>;

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
