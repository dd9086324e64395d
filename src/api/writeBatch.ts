/**
 * The `writeBatch` request: write calls of any op in one request, each with its own request
 * number (a client coalesces concurrent calls into one, and their numbers need not be
 * consecutive). The envelope is checked as a whole (a bad one is a `BAD_REQUEST` of the
 * request); each item is checked on its own, so a malformed item gets its own `BAD_REQUEST`
 * and the others are still decided. Items are read field by field, without a schema library:
 * this is the request every coalesced write arrives in.
 */
import { COMMAND_TYPES } from '../domain/decide/decide.ts';
import type { Command, RequestOrigin } from '../domain/model/types.ts';
import { MAX_BATCH_ITEMS } from './schema.ts';
import { ApiError } from './wire.ts';

/** The ops a `writeBatch` item may carry: one per command type. */
export const WRITE_OPS = COMMAND_TYPES;
export type WriteOp = (typeof WRITE_OPS)[number];

/** One item of a `writeBatch` request, as it goes on the wire. */
export type WriteBatchItem =
  | {
      readonly op: 'mountSegment';
      readonly segmentId: string;
      readonly nodeId: string;
      readonly size: number;
      /** The first byte of the range mounted (a group's slice); absent means 0. */
      readonly base?: number;
      readonly requestNo?: number;
    }
  | { readonly op: 'unmountSegment'; readonly segmentId: string; readonly requestNo?: number }
  | {
      readonly op: 'putStart';
      readonly key: string;
      readonly size: number;
      readonly replicaNum: number;
      readonly requestNo?: number;
    }
  | {
      readonly op: 'putEnd' | 'putRevoke' | 'remove';
      readonly key: string;
      readonly requestNo?: number;
    };

/**
 * The body of a `writeBatch` request. `session` (absent: the writes are not deduplicated)
 * gives the session id and the lowest request number the client still waits for; every item
 * then carries its own `requestNo`.
 */
export interface WriteBatchRequest {
  readonly items: readonly WriteBatchItem[];
  readonly session?: { readonly id: string; readonly oldestPending: number };
}

/** A checked item: the command and its request, or why the item is refused. */
export type ParsedWriteItem =
  | { readonly ok: true; readonly command: Command; readonly origin?: RequestOrigin }
  | { readonly ok: false; readonly error: ApiError };

/** The fields each op's item has besides `op` and `requestNo`, with their types. */
const ITEM_FIELDS: Record<WriteOp, Readonly<Record<string, 'string' | 'number'>>> = {
  mountSegment: { segmentId: 'string', nodeId: 'string', size: 'number' },
  unmountSegment: { segmentId: 'string' },
  putStart: { key: 'string', size: 'number', replicaNum: 'number' },
  putEnd: { key: 'string' },
  putRevoke: { key: 'string' },
  remove: { key: 'string' },
};

/** The fields an op's item may leave out, with their types. */
const OPTIONAL_ITEM_FIELDS: Partial<Record<WriteOp, Readonly<Record<string, 'number'>>>> = {
  mountSegment: { base: 'number' },
};

function badRequest(message: string, field: string): ApiError {
  return new ApiError({
    code: 'BAD_REQUEST',
    message: `invalid request: ${field}: ${message}`,
    field,
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/**
 * Checks the envelope of a `writeBatch` body: throws `BAD_REQUEST` (an `ApiError` naming the
 * field) when it is not `{items: [...], session?: {id, oldestPending}}` within the limits.
 */
function checkEnvelope(body: unknown): {
  items: readonly unknown[];
  session?: { id: string; oldestPending: number };
} {
  if (!isObject(body)) throw badRequest(`expected object, received ${typeName(body)}`, 'body');
  for (const field of Object.keys(body)) {
    if (field !== 'items' && field !== 'session') throw badRequest('unknown field', field);
  }
  const items = body['items'];
  if (!Array.isArray(items))
    throw badRequest(`expected array, received ${typeName(items)}`, 'items');
  if (items.length > MAX_BATCH_ITEMS)
    throw badRequest(`more than ${MAX_BATCH_ITEMS} items`, 'items');
  const session = body['session'];
  if (session === undefined) return { items };
  if (!isObject(session))
    throw badRequest(`expected object, received ${typeName(session)}`, 'session');
  for (const field of Object.keys(session)) {
    if (field !== 'id' && field !== 'oldestPending')
      throw badRequest('unknown field', `session.${field}`);
  }
  const { id, oldestPending } = session;
  if (typeof id !== 'string')
    throw badRequest(`expected string, received ${typeName(id)}`, 'session.id');
  if (typeof oldestPending !== 'number')
    throw badRequest(
      `expected number, received ${typeName(oldestPending)}`,
      'session.oldestPending',
    );
  return { items, session: { id, oldestPending } };
}

function parseItem(
  value: unknown,
  index: number,
  session: { id: string; oldestPending: number } | undefined,
): ParsedWriteItem {
  const at = `items.${index}`;
  const fail = (message: string, field: string): ParsedWriteItem => ({
    ok: false,
    error: badRequest(message, `${at}.${field}`),
  });
  if (!isObject(value))
    return { ok: false, error: badRequest(`expected object, received ${typeName(value)}`, at) };
  const op = value['op'];
  if (typeof op !== 'string' || !Object.hasOwn(ITEM_FIELDS, op))
    return fail(`expected one of ${WRITE_OPS.join('|')}`, 'op');
  const fields = ITEM_FIELDS[op as WriteOp];
  for (const field of Object.keys(value)) {
    if (field === 'op' || field === 'requestNo') continue;
    const type = fields[field] ?? OPTIONAL_ITEM_FIELDS[op as WriteOp]?.[field];
    if (type === undefined) return fail('unknown field', field);
    if (typeof value[field] !== type)
      return fail(`expected ${type}, received ${typeName(value[field])}`, field);
  }
  for (const field of Object.keys(fields)) {
    if (!Object.hasOwn(value, field))
      return fail(`expected ${fields[field]}, received undefined`, field);
  }
  const requestNo = value['requestNo'];
  if (requestNo !== undefined && typeof requestNo !== 'number')
    return fail(`expected number, received ${typeName(requestNo)}`, 'requestNo');
  if (session !== undefined && requestNo === undefined)
    return fail('expected number, received undefined', 'requestNo');
  if (session === undefined && requestNo !== undefined)
    return fail('a request number needs a session', 'requestNo');
  // Every field is there with its type: the item is a command of its op.
  const { requestNo: _requestNo, op: _op, ...rest } = value;
  const command = { type: op, ...rest } as unknown as Command;
  if (session === undefined) return { ok: true, command };
  return {
    ok: true,
    command,
    origin: {
      sessionId: session.id,
      requestNo: requestNo as number,
      oldestPending: session.oldestPending,
    },
  };
}

/**
 * Checks a decoded `writeBatch` body: one {@link ParsedWriteItem} per item, in order. Throws
 * `BAD_REQUEST` for a bad envelope. Values are not checked against the limits here: the
 * domain does it (`INVALID_ARGUMENT` naming the field).
 */
export function parseWriteBatch(body: unknown): ParsedWriteItem[] {
  const { items, session } = checkEnvelope(body);
  const parsed: ParsedWriteItem[] = [];
  for (let i = 0; i < items.length; i++) parsed.push(parseItem(items[i], i, session));
  return parsed;
}
