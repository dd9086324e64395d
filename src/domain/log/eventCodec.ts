import CRC32 from 'crc-32';
import { prefixHash } from './checksum.ts';
import { CodecError, frameEntry, isCheckedEntry } from './codec.ts';
import { eventKey } from './eventKey.ts';
import type { OpLogEntry } from './entry.ts';
import {
  MAX_EVICTION_KEYS,
  MAX_KEY_BYTES,
  MAX_NODE_ID_BYTES,
  MAX_OBJECT_SIZE,
  MAX_REQUEST_NO,
  MAX_REPLICAS,
  MAX_SAFE,
  MAX_SEGMENT_ID_BYTES,
  MAX_SEGMENT_SIZE,
} from '../model/limits.ts';
import type { LoggedEvent, MetadataEvent, Replica, RequestOrigin } from '../model/types.ts';
import { checkInteger, checkString, isRecord } from '../model/validate.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const str = JSON.stringify;

/** What JSON.stringify prints for a number. */
function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

function replicaJson(r: Replica): string {
  return `{"segmentId":${str(r.segmentId)},"nodeId":${str(r.nodeId)},"offset":${num(r.offset)},"length":${num(r.length)},"status":${str(r.status)}}`;
}

/**
 * The canonical JSON of an event (fixed field order, no extra fields): the text
 * JSON.stringify gives for `{op, ...fields}` in the order of the event's type, written
 * directly (no copy of the event is made).
 */
function eventJson(event: MetadataEvent): string {
  switch (event.op) {
    case 'MOUNT_SEGMENT':
      return `{"op":"MOUNT_SEGMENT","segmentId":${str(event.segmentId)},"nodeId":${str(event.nodeId)},"size":${num(event.size)}${event.base !== undefined && event.base > 0 ? `,"base":${num(event.base)}` : ''}`;
    case 'UNMOUNT_SEGMENT':
      return `{"op":"UNMOUNT_SEGMENT","segmentId":${str(event.segmentId)}`;
    case 'PUT_START': {
      let replicas = '';
      for (const r of event.replicas) replicas += (replicas === '' ? '' : ',') + replicaJson(r);
      return `{"op":"PUT_START","key":${str(event.key)},"size":${num(event.size)},"replicas":[${replicas}]`;
    }
    case 'PUT_END':
    case 'PUT_REVOKE':
    case 'REMOVE':
      return `{"op":"${event.op}","key":${str(event.key)}`;
    case 'EVICTION':
      return `{"op":"EVICTION","keys":${str(event.keys)}`;
    case 'EPOCH':
      return `{"op":"EPOCH","epoch":${num(event.epoch)},"nodeId":${str(event.nodeId)}`;
  }
}

function bad(message: string): never {
  throw new CodecError('garbled', `payload: ${message}`);
}

function check(error: { message: string } | undefined): void {
  if (error !== undefined) bad(error.message);
}

function exactKeys(value: Record<string, unknown>, keys: readonly string[]): void {
  const got = Object.keys(value);
  if (got.length !== keys.length || !keys.every((k) => Object.hasOwn(value, k))) {
    bad(`fields ${got.join(',')} (expected ${keys.join(',')})`);
  }
}

function parseReplica(value: unknown): Replica {
  if (!isRecord(value)) bad('replica is not an object');
  exactKeys(value, ['segmentId', 'nodeId', 'offset', 'length', 'status']);
  check(checkString(value['segmentId'], 'segmentId', MAX_SEGMENT_ID_BYTES));
  check(checkString(value['nodeId'], 'nodeId', MAX_NODE_ID_BYTES));
  check(checkInteger(value['offset'], 'offset', 0, MAX_SEGMENT_SIZE));
  check(checkInteger(value['length'], 'length', 1, MAX_OBJECT_SIZE));
  if (value['status'] !== 'processing' && value['status'] !== 'complete') bad('bad replica status');
  return value as unknown as Replica;
}

const SESSION_ID = /^[0-9a-f]{32}$/;

/** A session id is 32 lowercase hex digits (128 random bits). */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && SESSION_ID.test(value);
}

/**
 * Checks a request origin (from the wire or a payload): a session id of 32 lowercase hex
 * digits, `requestNo` >= 1 and `1 <= oldestPending <= requestNo`; the error names the field.
 */
export function checkOrigin(origin: RequestOrigin): { message: string; field: string } | undefined {
  if (!isSessionId(origin.sessionId))
    return { field: 'sessionId', message: 'invalid sessionId: must be 32 lowercase hex digits' };
  const requestNo = checkInteger(origin.requestNo, 'requestNo', 1, MAX_REQUEST_NO);
  if (requestNo !== undefined) return { field: 'requestNo', message: requestNo.message };
  const oldest = checkInteger(origin.oldestPending, 'oldestPending', 1, origin.requestNo);
  if (oldest !== undefined) return { field: 'oldestPending', message: oldest.message };
  return undefined;
}

/** The payload's origin field: `[sessionId, requestNo, oldestPending]`. */
function parseOrigin(value: unknown): RequestOrigin {
  if (!Array.isArray(value) || value.length !== 3)
    bad('origin must be [sessionId, requestNo, oldestPending]');
  const [sessionId, requestNo, oldestPending] = value as [string, number, number];
  const origin: RequestOrigin = { sessionId, requestNo, oldestPending };
  check(checkOrigin(origin));
  return origin;
}

/** Checks that a decoded JSON value is a well-formed event within the limits. */
export function parseEvent(value: unknown): MetadataEvent {
  return parsePayload(value).event;
}

/** Checks a decoded payload: the event, and the origin of the request when it has one. */
function parsePayload(payload: unknown): { event: MetadataEvent; origin?: RequestOrigin } {
  if (!isRecord(payload)) bad('not an object');
  let value: Record<string, unknown> = payload;
  let origin: RequestOrigin | undefined;
  if (Object.hasOwn(payload, 'origin')) {
    origin = parseOrigin(payload['origin']);
    const { origin: _origin, ...rest } = payload;
    value = rest;
  }
  switch (value['op']) {
    case 'MOUNT_SEGMENT':
      if (Object.hasOwn(value, 'base')) {
        exactKeys(value, ['op', 'segmentId', 'nodeId', 'size', 'base']);
        check(checkInteger(value['base'], 'base', 1, MAX_SEGMENT_SIZE));
      } else exactKeys(value, ['op', 'segmentId', 'nodeId', 'size']);
      check(checkString(value['segmentId'], 'segmentId', MAX_SEGMENT_ID_BYTES));
      check(checkString(value['nodeId'], 'nodeId', MAX_NODE_ID_BYTES));
      check(checkInteger(value['size'], 'size', 1, MAX_SEGMENT_SIZE));
      break;
    case 'UNMOUNT_SEGMENT':
      exactKeys(value, ['op', 'segmentId']);
      check(checkString(value['segmentId'], 'segmentId', MAX_SEGMENT_ID_BYTES));
      break;
    case 'PUT_START': {
      exactKeys(value, ['op', 'key', 'size', 'replicas']);
      check(checkString(value['key'], 'key', MAX_KEY_BYTES));
      check(checkInteger(value['size'], 'size', 1, MAX_OBJECT_SIZE));
      const replicas = value['replicas'];
      if (!Array.isArray(replicas) || replicas.length < 1 || replicas.length > MAX_REPLICAS) {
        bad(`replicas must be 1..${MAX_REPLICAS}`);
      }
      replicas.forEach(parseReplica);
      break;
    }
    case 'PUT_END':
    case 'PUT_REVOKE':
    case 'REMOVE':
      exactKeys(value, ['op', 'key']);
      check(checkString(value['key'], 'key', MAX_KEY_BYTES));
      break;
    case 'EVICTION': {
      exactKeys(value, ['op', 'keys']);
      const keys = value['keys'];
      if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_EVICTION_KEYS) {
        bad(`keys must be 1..${MAX_EVICTION_KEYS}`);
      }
      for (const key of keys) check(checkString(key, 'key', MAX_KEY_BYTES));
      break;
    }
    case 'EPOCH':
      exactKeys(value, ['op', 'epoch', 'nodeId']);
      check(checkInteger(value['epoch'], 'epoch', 0, MAX_SAFE));
      check(checkString(value['nodeId'], 'nodeId', MAX_NODE_ID_BYTES));
      break;
    default:
      bad(`unknown op ${JSON.stringify(value['op'])}`);
  }
  const event = value as unknown as MetadataEvent;
  if (origin === undefined) return { event };
  if (event.op === 'EVICTION' || event.op === 'EPOCH') bad(`${event.op} has no request origin`);
  return { event, origin };
}

/**
 * The payload text of an event (and the request it answers): canonical JSON, the event's
 * fields then `"origin":[sessionId, requestNo, oldestPending]` when there is one.
 */
function payloadJson(event: MetadataEvent, origin?: RequestOrigin): string {
  const json = eventJson(event);
  if (origin === undefined) return `${json}}`;
  return `${json},"origin":[${str(origin.sessionId)},${num(origin.requestNo)},${num(origin.oldestPending)}]}`;
}

/** Encodes an event (and the request it answers) as its payload bytes: UTF-8 of its JSON. */
export function encodeEvent(event: MetadataEvent, origin?: RequestOrigin): Uint8Array {
  return encoder.encode(payloadJson(event, origin));
}

/** Decodes and validates payload bytes. Throws CodecError. */
export function decodeEvent(payload: Uint8Array): MetadataEvent {
  return decodePayload(payload).event;
}

function decodePayload(payload: Uint8Array): { event: MetadataEvent; origin?: RequestOrigin } {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch (cause) {
    throw new CodecError('garbled', 'payload is not UTF-8 JSON', { cause });
  }
  return parsePayload(value);
}

/**
 * The OpLog entry of a logged event: fills op, key, payload, checksum and prefixHash, and makes
 * its binary frame at the same time (codec.ts `frameEntry`), so appending it encodes nothing
 * again.
 */
export function toEntry(logged: LoggedEvent): OpLogEntry {
  return frameEntry(
    {
      seq: logged.seq,
      epoch: logged.epoch,
      ts: logged.ts,
      op: logged.event.op,
      key: eventKey(logged.event),
    },
    payloadJson(logged.event, logged.origin),
  );
}

/**
 * The logged event of an entry. Throws {@link CodecError} when the checksum or prefixHash does
 * not match, the payload is not a valid event, or its op/key disagree with the entry's.
 */
export function fromEntry(entry: OpLogEntry): LoggedEvent {
  // An entry decoded from its frame (decodeEntry) had both checked already.
  if (!isCheckedEntry(entry)) {
    if (CRC32.buf(entry.payload, 0) >>> 0 !== entry.checksum) {
      throw new CodecError('checksum', `entry ${entry.seq}: checksum != CRC32(payload)`);
    }
    if (prefixHash(entry.key) !== entry.prefixHash) {
      throw new CodecError('checksum', `entry ${entry.seq}: prefixHash does not match key`);
    }
  }
  const { event, origin } = decodePayload(entry.payload);
  if (event.op !== entry.op)
    throw new CodecError('garbled', `entry ${entry.seq}: op ${entry.op}, payload ${event.op}`);
  if (eventKey(event) !== entry.key)
    throw new CodecError('garbled', `entry ${entry.seq}: key disagrees with payload`);
  const logged = { seq: entry.seq, epoch: entry.epoch, ts: entry.ts, event };
  return origin === undefined ? logged : { ...logged, origin };
}

/** A readable rendering of an entry (for `understudy replay`): the decoded event inside. */
export function entryToJSON(entry: OpLogEntry): Record<string, unknown> {
  let event: unknown;
  let origin: RequestOrigin | undefined;
  try {
    ({ event, origin } = fromEntry(entry));
  } catch (error) {
    event = { undecodable: error instanceof Error ? error.message : String(error) };
  }
  return {
    seq: entry.seq,
    epoch: entry.epoch,
    ts: entry.ts,
    time:
      Number.isFinite(entry.ts) && Math.abs(entry.ts) <= 8.64e15
        ? new Date(entry.ts).toISOString()
        : null,
    op: entry.op,
    key: entry.key,
    checksum: entry.checksum,
    prefixHash: entry.prefixHash,
    event,
    ...(origin === undefined ? {} : { origin }),
  };
}
