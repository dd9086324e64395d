/**
 * The admin channel between nodes: request/reply of bytes per operation, answered only by the
 * primary (it listens only while it serves). Standbys send verification rounds (`verify`) and
 * fetch full syncs (`syncStart`, `syncChunk`) through it. It reuses the client API's transport
 * ports: over NATS on `understudy.<cluster>.admin.<op>` (`adapters/nats/natsAdminTransport.ts`),
 * in memory on a {@link MemoryApiBus} under {@link adminBusKey}.
 *
 * Reply framing: one tag byte, then
 * - `0x01` UTF-8 JSON of the value;
 * - `0x00` UTF-8 JSON of an {@link AdminErrorBody};
 * - `0x02` u32 (big-endian) number of parts, then the bytes of one part (full-sync chunks).
 */
import type { ApiClientTransport, ApiRequestHandler } from '../ports/apiTransport.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** The admin operations. */
export type AdminOp = 'verify' | 'syncStart' | 'syncChunk';

const TAG_ERROR = 0x00;
const TAG_JSON = 0x01;
const TAG_PART = 0x02;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An error as the primary reports it. */
export interface AdminErrorBody {
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
}

/** The primary refused an admin request (bad request, unknown sync session, internal error). */
export class AdminError extends UnderstudyError {
  override readonly name = 'AdminError';
  constructor(
    readonly op: string,
    readonly code: string,
    override readonly retryable: boolean,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${op}: ${code}: ${message}`, options);
  }
}

/** A reply that is not in the admin framing. Not retryable. */
export class AdminProtocolError extends UnderstudyError {
  override readonly name = 'AdminProtocolError';
  readonly code = 'ADMIN_PROTOCOL';
  override readonly retryable = false;
  constructor(
    readonly op: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${op}: ${message}`, options);
  }
}

/** The key of the admin channel of `cluster` on a shared in-memory bus. */
export function adminBusKey(cluster: string): string {
  return `${cluster}.admin`;
}

/** Frames a JSON value. */
export function jsonReply(value: unknown): Uint8Array {
  const body = encoder.encode(JSON.stringify(value));
  const out = new Uint8Array(1 + body.length);
  out[0] = TAG_JSON;
  out.set(body, 1);
  return out;
}

/** Frames an error. */
export function errorReply(error: AdminErrorBody): Uint8Array {
  const body = encoder.encode(JSON.stringify(error));
  const out = new Uint8Array(1 + body.length);
  out[0] = TAG_ERROR;
  out.set(body, 1);
  return out;
}

/** Frames one part of a binary payload cut into `parts` parts. */
export function partReply(parts: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + bytes.length);
  out[0] = TAG_PART;
  new DataView(out.buffer).setUint32(1, parts);
  out.set(bytes, 5);
  return out;
}

function unframe(op: string, reply: Uint8Array): { tag: number; body: Uint8Array } {
  if (reply.length < 1) throw new AdminProtocolError(op, 'empty reply');
  const tag = reply[0] as number;
  const body = reply.subarray(1);
  if (tag === TAG_ERROR) {
    let error: Partial<AdminErrorBody>;
    try {
      error = JSON.parse(decoder.decode(body)) as Partial<AdminErrorBody>;
    } catch (cause) {
      throw new AdminProtocolError(op, 'garbled error reply', { cause });
    }
    throw new AdminError(
      op,
      String(error.code ?? 'INTERNAL'),
      error.retryable === true,
      String(error.message ?? ''),
    );
  }
  return { tag, body };
}

/** Parses a request body as JSON; throws an {@link AdminError} `BAD_REQUEST`. */
export function parseRequest<T>(op: string, body: Uint8Array): T {
  try {
    return JSON.parse(decoder.decode(body)) as T;
  } catch (cause) {
    throw new AdminError(op, 'BAD_REQUEST', false, 'the body is not JSON', { cause });
  }
}

/** Wraps per-op functions into a transport handler that frames values and errors. */
export function adminHandler(
  ops: Readonly<Record<string, (body: Uint8Array) => Uint8Array | Promise<Uint8Array>>>,
): ApiRequestHandler {
  return async (op, body) => {
    const serve = Object.hasOwn(ops, op) ? ops[op] : undefined;
    if (serve === undefined)
      return errorReply({ code: 'UNKNOWN_OP', message: `no admin op ${op}`, retryable: false });
    try {
      return await serve(body);
    } catch (err) {
      if (err instanceof AdminError)
        return errorReply({ code: err.code, message: err.message, retryable: err.retryable });
      const retryable = (err as { retryable?: unknown }).retryable === true;
      const code = err instanceof Error && err.name !== 'Error' ? err.name : 'INTERNAL';
      return errorReply({ code, message: String((err as Error).message ?? err), retryable });
    }
  };
}

/** The standby's side of the admin channel. */
export class AdminClient {
  constructor(
    private readonly transport: ApiClientTransport,
    /** Per-request timeout (ms). */
    readonly timeoutMs: number,
  ) {}

  /**
   * Sends `request` as JSON and resolves with the JSON answer. Rejects with the transport's
   * typed errors (no primary, timeout) or {@link AdminError} when the primary refused.
   */
  async json<T>(op: AdminOp, request: unknown): Promise<T> {
    const reply = await this.transport.request(
      op,
      encoder.encode(JSON.stringify(request)),
      this.timeoutMs,
    );
    const { tag, body } = unframe(op, reply);
    if (tag !== TAG_JSON) throw new AdminProtocolError(op, `expected JSON, got tag ${tag}`);
    return JSON.parse(decoder.decode(body)) as T;
  }

  /** Sends `request` as JSON and resolves with one binary part and the number of parts. */
  async part(op: AdminOp, request: unknown): Promise<{ parts: number; bytes: Uint8Array }> {
    const reply = await this.transport.request(
      op,
      encoder.encode(JSON.stringify(request)),
      this.timeoutMs,
    );
    const { tag, body } = unframe(op, reply);
    if (tag !== TAG_PART || body.length < 4)
      throw new AdminProtocolError(op, `expected a part, got tag ${tag}`);
    const parts = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0);
    return { parts, bytes: body.subarray(4) };
  }
}
