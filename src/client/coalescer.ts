/**
 * Client-side coalescing of write calls (as JetStream's own group commit and Kafka's producer
 * batch): a call made while the client's coalesced requests are all in flight waits in a queue,
 * and the queue goes out as one `writeBatch` request as soon as a request slot frees, bounded in
 * items and bytes. A call made when a slot is free goes out at once (the calls made in the same
 * tick go together), so an idle client adds no latency. Each call keeps its own request number
 * (exactly-once holds per item: a retried batch carries the same numbers, and the primary
 * answers the items it applied from its session table) and gets its own result or error.
 */
import { responseSchemas, MAX_BATCH_ITEMS, type ApiOp, type ApiResponse } from '../api/schema.ts';
import { ApiError, MAX_REQUEST_BYTES, encodeJson, type WireError } from '../api/wire.ts';
import type { WriteBatchItem, WriteOp } from '../api/writeBatch.ts';

/** Bounds of coalescing. */
export interface CoalesceOptions {
  /** Most coalesced requests in flight at once (default 2). */
  readonly maxInFlight?: number;
  /** Most calls in one request (default and most: the server's batch limit, 1000). */
  readonly maxItems?: number;
  /**
   * Most bytes of one `writeBatch` request body (default 256 KiB; at most the server's request
   * limit). A call too large to share a request goes alone.
   */
  readonly maxBytes?: number;
}

/** What the coalescer needs of the client. */
export interface CoalescerClient {
  /**
   * Sends `op` with the client's retries until the absolute monotonic `deadline`; `encode`
   * makes each attempt's body. Rejects with the client's ApiError.
   */
  call<Op extends ApiOp>(
    op: Op,
    encode: () => Uint8Array,
    deadline: number,
  ): Promise<ApiResponse<Op>>;
  /** The session of the client: its id, and the lowest request number it still waits for. */
  session(): { readonly id: string; readonly oldestPending: number };
  /** The client's monotonic clock, in ms. */
  now(): number;
}

/** The fields of a write call of `op`, as the single-op request carries them. */
export type WriteFields = Omit<WriteBatchItem, 'op' | 'requestNo'>;

interface QueuedCall {
  readonly op: WriteOp;
  readonly fields: WriteFields;
  readonly requestNo: number;
  readonly deadline: number;
  readonly queuedAt: number;
  /** The call's `writeBatch` item, as JSON (encoded once, whatever the retries). */
  readonly item: string;
  /** Its UTF-8 bytes. */
  readonly bytes: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: ApiError) => void;
}

const encoder = new TextEncoder();

/** Bytes of a `writeBatch` body besides its items and their commas (session id of 32 hex). */
const ENVELOPE_BYTES = 128;

/** UTF-8 bytes of `text`. */
function utf8Bytes(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A surrogate pair is 2 units and 4 bytes; another unit above 0x7f is 2 or 3 bytes.
    if (c >= 0x80) n += c >= 0xd800 && c <= 0xdfff ? 1 : c >= 0x800 ? 2 : 1;
  }
  return n;
}

/** Coalesces one client's write calls; see the module doc. */
export class WriteCoalescer {
  readonly #client: CoalescerClient;
  readonly #maxInFlight: number;
  readonly #maxItems: number;
  readonly #maxBytes: number;
  #queue: QueuedCall[] = [];
  #inFlight = 0;
  #scheduled = false;
  #closed: ((op: ApiOp) => ApiError) | undefined;

  constructor(client: CoalescerClient, options: CoalesceOptions = {}) {
    this.#client = client;
    this.#maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 2));
    this.#maxItems = Math.min(MAX_BATCH_ITEMS, Math.max(1, Math.floor(options.maxItems ?? 1000)));
    this.#maxBytes = Math.min(MAX_REQUEST_BYTES, Math.max(1, options.maxBytes ?? 256 * 1024));
  }

  /** Calls waiting for a request slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Coalesced requests in flight. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Queues write call `requestNo` of `op`; resolves with its result (what the single-op
   * request answers) or rejects with its ApiError. `deadline` (absolute, on the client's
   * monotonic clock) bounds its wait in the queue and its retries, as for a call sent alone.
   */
  submit<Op extends WriteOp>(
    op: Op,
    fields: WriteFields,
    requestNo: number,
    deadline: number,
  ): Promise<ApiResponse<Op>> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed(op));
    const item = JSON.stringify({ op, ...fields, requestNo });
    return new Promise<ApiResponse<Op>>((resolve, reject) => {
      this.#queue.push({
        op,
        fields,
        requestNo,
        deadline,
        queuedAt: this.#client.now(),
        item,
        bytes: utf8Bytes(item),
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      this.#schedule();
    });
  }

  /** Rejects every queued call with `error(op)`, and every later one. */
  close(error: (op: ApiOp) => ApiError): void {
    this.#closed = error;
    const queue = this.#queue;
    this.#queue = [];
    for (const call of queue) call.reject(error(call.op));
  }

  /** Sends what the free slots allow once the current tick's calls are queued. */
  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#dropExpired();
      while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) this.#send(this.#take());
    });
  }

  /** Queued calls past their deadline fail with TIMEOUT, never sent. */
  #dropExpired(): void {
    const now = this.#client.now();
    if (this.#queue.every((call) => call.deadline > now)) return;
    const queue = this.#queue;
    this.#queue = queue.filter((call) => call.deadline > now);
    for (const call of queue) {
      if (call.deadline > now) continue;
      call.reject(
        new ApiError({
          code: 'TIMEOUT',
          message: `${call.op} gave up after 0 attempts: queued ${now - call.queuedAt} ms behind the client's requests in flight`,
        }),
      );
    }
  }

  /** The next request's calls: the oldest ones, within the bounds (at least one). */
  #take(): QueuedCall[] {
    let count = 0;
    let bytes = ENVELOPE_BYTES;
    while (count < this.#queue.length && count < this.#maxItems) {
      const next = (this.#queue[count] as QueuedCall).bytes + 1;
      if (count > 0 && bytes + next > this.#maxBytes) break;
      bytes += next;
      count++;
    }
    return this.#queue.splice(0, count);
  }

  #send(calls: QueuedCall[]): void {
    this.#inFlight++;
    const done = (): void => {
      this.#inFlight--;
      if (this.#queue.length > 0) this.#schedule();
    };
    const sent =
      calls.length === 1 ? this.#sendOne(calls[0] as QueuedCall) : this.#sendBatch(calls);
    sent.then(done, done);
  }

  /** One call alone: the single-op request, as without coalescing. */
  async #sendOne(call: QueuedCall): Promise<void> {
    try {
      const result = await this.#client.call(
        call.op,
        () =>
          encodeJson({
            ...call.fields,
            session: { ...this.#client.session(), requestNo: call.requestNo },
          }),
        call.deadline,
      );
      call.resolve(result);
    } catch (err) {
      call.reject(asApiError(err));
    }
  }

  /** Several calls as one `writeBatch`; each call is settled with its own item's result. */
  async #sendBatch(calls: QueuedCall[]): Promise<void> {
    const items = calls.map((c) => c.item).join(',');
    let results: ApiResponse<'writeBatch'>['results'];
    try {
      const reply = await this.#client.call(
        'writeBatch',
        () =>
          encoder.encode(
            `{"items":[${items}],"session":${JSON.stringify(this.#client.session())}}`,
          ),
        Math.min(...calls.map((c) => c.deadline)),
      );
      results = reply.results;
    } catch (err) {
      const error = asApiError(err);
      for (const call of calls) call.reject(new ApiError(error.toWire(), { cause: error }));
      return;
    }
    calls.forEach((call, i) => {
      const item = results[i];
      if (item === undefined) {
        call.reject(malformed(call.op, 'fewer results than items'));
      } else if (!item.ok) {
        call.reject(new ApiError(asItsOwn(item.error, i)));
      } else {
        const parsed = responseSchemas[call.op].safeParse(item.result);
        if (parsed.success) call.resolve(parsed.data);
        else call.reject(malformed(call.op, `malformed ${call.op} result`, parsed.error));
      }
    });
  }
}

/** Item `index`'s error as the call's own: a field named `items.<index>.key` is `key`. */
function asItsOwn<E extends Pick<WireError, 'message'> & { field?: string | undefined }>(
  error: E,
  index: number,
): E {
  const prefix = `items.${index}.`;
  if (error.field === undefined || !error.field.startsWith(prefix)) return error;
  return {
    ...error,
    field: error.field.slice(prefix.length),
    message: error.message.replace(prefix, ''),
  };
}

function malformed(op: WriteOp, message: string, cause?: unknown): ApiError {
  return new ApiError(
    { code: 'INTERNAL', message: `${op}: ${message} from the server` },
    cause === undefined ? undefined : { cause },
  );
}

function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError({ code: 'INTERNAL', message: String(err) }, { cause: err });
}
