/**
 * The server side of the client API: bytes in, bytes out. Size check, JSON parse, schema
 * check, then the {@link MetadataService} call, then the reply. Every failure becomes a typed
 * wire error; the handler never throws.
 */
import { groupOfKey } from '../domain/model/groups.ts';
import type { z } from 'zod';
import { DomainError, ObjectExistsError } from '../domain/model/errors.ts';
import type { Command, RequestOrigin } from '../domain/model/types.ts';
import type { ApiRequestHandler } from '../ports/apiTransport.ts';
import {
  NotPrimaryError,
  type BatchItemResult,
  type ExecuteResult,
  type MetadataService,
} from '../ports/metadataService.ts';
import {
  isApiOp,
  requestSchemas,
  type ApiOp,
  type ApiRequest,
  type ApiResponse,
  type SessionField,
} from './schema.ts';
import { parseWriteBatch } from './writeBatch.ts';
import {
  ApiError,
  decodeJson,
  encodeError,
  encodeOk,
  MAX_REQUEST_BYTES,
  type WireError,
} from './wire.ts';

export interface ApiHandlerOptions {
  /** Largest request body accepted, in bytes (default {@link MAX_REQUEST_BYTES}). */
  readonly maxRequestBytes?: number;
  /** Called with every error answered as `INTERNAL` (a bug): log it. */
  readonly onInternalError?: (op: string, error: unknown) => void;
  /**
   * The group this primary serves, of a cluster of several: a request naming a key of another
   * group is refused whole with `BAD_REQUEST` (field `key`), changing nothing. Such a request
   * comes from a client whose `groups` is not the cluster's; without this check it would put the
   * key in a group that does not own it. Absent (one group): every key is served.
   */
  readonly group?: { readonly group: number; readonly groups: number };
}

/** The keys a request names (`key`, `items[].key`, `keys[]`), read off the raw body. */
function keysOf(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [];
  const body = value as Record<string, unknown>;
  const keys: string[] = [];
  if (typeof body['key'] === 'string') keys.push(body['key']);
  for (const item of Array.isArray(body['items']) ? (body['items'] as unknown[]) : []) {
    const key = (item as Record<string, unknown> | null)?.['key'];
    if (typeof key === 'string') keys.push(key);
  }
  for (const key of Array.isArray(body['keys']) ? (body['keys'] as unknown[]) : []) {
    if (typeof key === 'string') keys.push(key);
  }
  return keys;
}

/** Throws `BAD_REQUEST` when the request names a key `group` does not own. */
function checkGroupOwnsKeys(
  value: unknown,
  { group, groups }: { readonly group: number; readonly groups: number },
): void {
  for (const key of keysOf(value)) {
    const owner = groupOfKey(key, groups);
    if (owner === group) continue;
    throw badRequest(
      `key ${JSON.stringify(key.slice(0, 64))} belongs to group ${owner} of ${groups}, not to group ${group}: the client's groups option must be the cluster's (${groups})`,
      'key',
    );
  }
}

function badRequest(message: string, field?: string): ApiError {
  return new ApiError({
    code: 'BAD_REQUEST',
    message,
    ...(field === undefined ? {} : { field }),
  });
}

/** The wire form of an error thrown by the service or the handler. */
export function toWireError(error: unknown): WireError | undefined {
  if (error instanceof ApiError) return error.toWire();
  if (error instanceof ObjectExistsError) {
    return {
      code: 'OBJECT_EXISTS',
      message: error.message,
      retryable: error.retryable,
      field: 'key',
      details: { replicas: error.placement, complete: error.complete },
    };
  }
  if (error instanceof DomainError) {
    return {
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      ...(error.field === undefined ? {} : { field: error.field }),
      ...(error.limit === undefined ? {} : { limit: error.limit }),
    };
  }
  if (error instanceof NotPrimaryError) {
    return {
      code: error.code,
      message: error.message,
      retryable: error.retryable,
      ...(error.leader === undefined ? {} : { details: { leader: error.leader } }),
    };
  }
  return undefined;
}

function internal(op: string, error: unknown, options: ApiHandlerOptions): WireError {
  options.onInternalError?.(op, error);
  return new ApiError({ code: 'INTERNAL', message: `internal error in ${op}` }).toWire();
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue === undefined ? undefined : issue.path.map(String).join('.');
  const message = issue === undefined ? 'invalid request' : issue.message;
  return badRequestThrow(
    `invalid request: ${field ? `${field}: ` : ''}${message}`,
    field || undefined,
  );
}

function badRequestThrow(message: string, field: string | undefined): never {
  throw badRequest(message, field);
}

/** What a write call answers: its placement (putStart) or its seq. */
function resultOf(command: Command, result: ExecuteResult): unknown {
  return command.type === 'putStart'
    ? placementOf(command.key, command.size, result)
    : { seq: result.seq };
}

function placementOf(key: string, size: number, result: ExecuteResult): ApiResponse<'putStart'> {
  if (result.replicas === undefined) throw new Error('the service returned no placement');
  return { key, size, replicas: [...result.replicas], seq: result.seq };
}

function batchItem<T>(
  op: string,
  item: BatchItemResult,
  map: (result: ExecuteResult) => T,
  options: ApiHandlerOptions,
): { ok: true; result: T } | { ok: false; error: WireError } {
  if (item.ok) return { ok: true, result: map(item.result) };
  return { ok: false, error: toWireError(item.error) ?? internal(op, item.error, options) };
}

/** The request origin of item `i` of a request's session (request numbers are consecutive). */
function originOf(session: SessionField | undefined, i = 0): RequestOrigin | undefined {
  if (session === undefined) return undefined;
  return {
    sessionId: session.id,
    requestNo: session.requestNo + i,
    oldestPending: session.oldestPending,
  };
}

function originsOf(session: SessionField | undefined, count: number): RequestOrigin[] | undefined {
  if (session === undefined) return undefined;
  return Array.from({ length: count }, (_, i) => originOf(session, i) as RequestOrigin);
}

async function dispatch(
  service: MetadataService,
  op: ApiOp,
  body: unknown,
  options: ApiHandlerOptions,
): Promise<unknown> {
  switch (op) {
    case 'mountSegment': {
      const { session, base, ...r }: ApiRequest<'mountSegment'> = parse(
        requestSchemas.mountSegment,
        body,
      );
      const { seq } = await service.execute(
        { type: 'mountSegment', ...r, ...(base === undefined ? {} : { base }) },
        originOf(session),
      );
      return { seq };
    }
    case 'unmountSegment': {
      const r = parse(requestSchemas.unmountSegment, body);
      const { seq } = await service.execute(
        { type: 'unmountSegment', segmentId: r.segmentId },
        originOf(r.session),
      );
      return { seq };
    }
    case 'putStart': {
      const { session, ...r } = parse(requestSchemas.putStart, body);
      return placementOf(
        r.key,
        r.size,
        await service.execute({ type: 'putStart', ...r }, originOf(session)),
      );
    }
    case 'putEnd':
    case 'putRevoke':
    case 'remove': {
      const r = parse(requestSchemas[op], body);
      const { seq } = await service.execute({ type: op, key: r.key }, originOf(r.session));
      return { seq };
    }
    case 'get': {
      const r = parse(requestSchemas.get, body);
      const record = await service.get(r.key);
      const result: ApiResponse<'get'> = {
        key: record.key,
        size: record.size,
        replicas: [...record.replicas],
        lastSeq: record.lastSeq,
      };
      return result;
    }
    case 'exists': {
      const r = parse(requestSchemas.exists, body);
      return { exists: await service.exists(r.key) };
    }
    case 'putStartBatch': {
      const r = parse(requestSchemas.putStartBatch, body);
      const items = await service.executeBatch(
        r.items.map((i): Command => ({ type: 'putStart', ...i })),
        originsOf(r.session, r.items.length),
      );
      if (items.length !== r.items.length) throw new Error('batch result count mismatch');
      return {
        results: items.map((item, i) =>
          batchItem(
            op,
            item,
            (res) => placementOf(r.items[i]!.key, r.items[i]!.size, res),
            options,
          ),
        ),
      };
    }
    case 'writeBatch': {
      const parsed = parseWriteBatch(body);
      const valid: { command: Command; origin: RequestOrigin | undefined; at: number }[] = [];
      parsed.forEach((item, at) => {
        if (item.ok) valid.push({ command: item.command, origin: item.origin, at });
      });
      const results: unknown[] = parsed.map((item) =>
        item.ok ? undefined : { ok: false, error: item.error.toWire() },
      );
      if (valid.length > 0) {
        const items = await service.executeBatch(
          valid.map((v) => v.command),
          valid.some((v) => v.origin !== undefined) ? valid.map((v) => v.origin) : undefined,
        );
        if (items.length !== valid.length) throw new Error('batch result count mismatch');
        items.forEach((item, i) => {
          const { command, at } = valid[i]!;
          results[at] = batchItem(op, item, (res) => resultOf(command, res), options);
        });
      }
      return { results };
    }
    case 'putEndBatch': {
      const r = parse(requestSchemas.putEndBatch, body);
      const items = await service.executeBatch(
        r.keys.map((key): Command => ({ type: 'putEnd', key })),
        originsOf(r.session, r.keys.length),
      );
      if (items.length !== r.keys.length) throw new Error('batch result count mismatch');
      return {
        results: items.map((item) => batchItem(op, item, (res) => ({ seq: res.seq }), options)),
      };
    }
  }
}

/**
 * The request handler a transport listener calls. It checks the size (before parsing), parses
 * the JSON, checks the shape, calls `service` and encodes the reply. It never throws and never
 * rejects: garbage bytes, an unknown op or a wrong shape get `BAD_REQUEST` (naming the field),
 * an oversize body `REQUEST_TOO_LARGE`, service errors their code (`NOT_PRIMARY` retryable,
 * `OBJECT_EXISTS` with the existing placement in `details`), anything else `INTERNAL`.
 */
export function createApiHandler(
  service: MetadataService,
  options: ApiHandlerOptions = {},
): ApiRequestHandler {
  const maxBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;
  return async (op, body) => {
    try {
      if (!isApiOp(op)) throw badRequest(`unknown op ${JSON.stringify(op.slice(0, 64))}`, 'op');
      if (body.byteLength > maxBytes) {
        throw new ApiError({
          code: 'REQUEST_TOO_LARGE',
          message: `request of ${body.byteLength} bytes exceeds ${maxBytes} bytes`,
          limit: maxBytes,
        });
      }
      let value: unknown;
      try {
        value = decodeJson(body);
      } catch (err) {
        throw badRequest(`request body is not UTF-8 JSON: ${(err as Error).message}`);
      }
      if (options.group !== undefined) checkGroupOwnsKeys(value, options.group);
      return encodeOk(await dispatch(service, op, value, options));
    } catch (err) {
      try {
        return encodeError(toWireError(err) ?? internal(op, err, options));
      } catch {
        return encodeError(new ApiError({ code: 'INTERNAL', message: 'internal error' }).toWire());
      }
    }
  };
}
