// The public declarations name Symbol.asyncDispose: they bring the lib that declares it, so a
// consumer's tsc needs neither lib: ["esnext"] nor @types/node (TypeScript 6 and later no longer
// load @types packages unasked).
/// <reference lib="esnext.disposable" preserve="true" />
/**
 * The understudy client library. It sends each call to the cluster's primary and retries the
 * retryable failures (`NOT_PRIMARY`, `TIMEOUT`, `NO_RESPONDERS`, `UNAVAILABLE`) with jittered
 * exponential backoff until a deadline, so a failover looks like a pause to the caller; when a
 * new primary announces itself, calls waiting out a backoff retry at once. Everything else is
 * thrown at once as an {@link ApiError} with its code.
 */
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import {
  objectExistsDetailsSchema,
  responseSchemas,
  type Ack,
  type ApiOp,
  type ApiRequest,
  type ApiResponse,
  type ObjectExistsDetails,
  type Placement,
  type PutStartItem,
} from '../api/schema.ts';
import { assertClusterName } from '../api/subjects.ts';
import { WRITE_OPS, type WriteOp } from '../api/writeBatch.ts';
import {
  ApiError,
  decodeJson,
  encodeJson,
  MAX_REQUEST_BYTES,
  RETRYABLE_CODES,
  wireReplySchema,
  type ApiErrorCode,
} from '../api/wire.ts';
import { transportFailure } from '../api/wireCodes.ts';
import type { ObjectRecord } from '../domain/model/types.ts';
import { type ApiClientTransport } from '../ports/apiTransport.ts';
import type { Clock } from '../ports/clock.ts';
import { WriteCoalescer, type CoalesceOptions, type WriteFields } from './coalescer.ts';

const WRITE_OP_SET: ReadonlySet<string> = new Set(WRITE_OPS);

function isWriteOp(op: ApiOp): op is WriteOp {
  return WRITE_OP_SET.has(op);
}

export type { Ack, ObjectExistsDetails, Placement, PutStartItem } from '../api/schema.ts';
export type { CoalesceOptions } from './coalescer.ts';
export { ApiError, type ApiErrorCode } from '../api/wire.ts';

/** Backoff between retries: full jitter over `min(maxMs, initialMs * 2^(attempt-1))`. */
export interface BackoffOptions {
  /** Ceiling of the first wait (default 50 ms). */
  readonly initialMs?: number;
  /** Largest ceiling (default 1000 ms). */
  readonly maxMs?: number;
}

/** A call that succeeded (or got a definitive answer) after retryable failures. */
export interface FailoverEvent {
  readonly op: ApiOp;
  /** The attempt that got the answer (2 or more). */
  readonly attempt: number;
  /** The code of the last retryable failure. */
  readonly code: ApiErrorCode;
  /** Milliseconds from the call's first attempt to the answer. */
  readonly waitedMs: number;
}

export interface ClientOptions {
  /** NATS server URL(s); used unless `transport` is given. */
  readonly servers?: string | string[];
  /** The cluster name: the API subjects are `understudy.<cluster>.api.<op>`. */
  readonly cluster: string;
  /** A transport to use instead of connecting to `servers` (tests, simulation). Not closed by the client. */
  readonly transport?: ApiClientTransport;
  /** Timeout of one attempt (default 2000 ms). */
  readonly requestTimeoutMs?: number;
  /**
   * How often the connection the client opens pings its NATS server (default 1250 ms, a
   * quarter of the default lease TTL). With two pings unanswered the server counts as hung and
   * the client reconnects to another server of `servers` (or of the cluster it learned), so a
   * hung server costs a client 2-3 intervals instead of the NATS default of minutes (a ping
   * every 2 minutes). Give every server of the cluster in `servers`.
   */
  readonly pingIntervalMs?: number;
  /** Total time a call may spend retrying (default 15000 ms: longer than a lease TTL plus failover). */
  readonly deadlineMs?: number;
  readonly backoff?: BackoffOptions;
  /** Called on every {@link FailoverEvent}. */
  readonly onFailover?: (event: FailoverEvent) => void;
  /** Random numbers in [0, 1) for the jitter (default Math.random). */
  readonly random?: () => number;
  /** The clock deadlines and backoff run on (default the real clock). */
  readonly clock?: Clock;
  /**
   * The session id: 32 lowercase hex digits (default: 128 random bits from the OS). Give one
   * only to make a test deterministic; two clients must never share one.
   */
  readonly sessionId?: string;
  /**
   * Coalescing of write calls (default on): calls made while the client's requests are in
   * flight go out together as one request, each with its own request number, result and error.
   * `false` sends every call as its own request.
   */
  readonly coalesce?: CoalesceOptions | false;
}

/** The result of one batch item: its value, or the error that refused it. */
export type BatchResult<T> =
  { readonly ok: true; readonly result: T } | { readonly ok: false; readonly error: ApiError };

/**
 * A client of one understudy cluster. Every method resolves once the primary has committed
 * the command to the OpLog (writes) or answered from committed state (reads), and rejects with
 * an {@link ApiError}: at once for a refused or bad request (its domain code, `BAD_REQUEST`,
 * `REQUEST_TOO_LARGE`), or after `deadlineMs` of retrying with the last retryable code
 * (`NOT_PRIMARY`, `TIMEOUT`, `NO_RESPONDERS`, `UNAVAILABLE`).
 *
 * The contract, across any failover, restart or full sync of the cluster:
 *
 * - **Exactly once.** The client is a session (a random 128-bit id) and numbers its write
 *   calls; every attempt of a call carries the call's number and the lowest number the client
 *   still waits for. The cluster's replicated session table keeps each applied call's result,
 *   so a retry after a lost reply, a timeout or a failover gets the original result (the same
 *   `seq`, the same placement) and the call is applied once. `OBJECT_EXISTS`, `INVALID_STATE`
 *   or `OBJECT_NOT_FOUND` therefore always mean what they say about the cluster's state, never
 *   "your own earlier attempt got there first". Bounds: a session idle for an hour (logged
 *   time) is forgotten, so no call may be retried for longer (the deadline is 15 s by
 *   default); a session keeps the results of at most 10,000 calls in flight (an older retry is
 *   refused with `REQUEST_EXPIRED`, never applied twice).
 * - **Linearizable.** Each call takes effect at one instant between its invocation and its
 *   answer: a success is answered once its entry is acknowledged by the OpLog; a refusal
 *   (`OBJECT_EXISTS`, ...) only once the state it was judged against is committed; reads answer
 *   from committed state, only while the primary's lease deadline (on a monotonic clock) is
 *   ahead.
 * - **Unknown outcomes.** A write that fails with a retryable code after `deadlineMs`, or with
 *   `CLOSED`, `INTERNAL` or `REQUEST_EXPIRED`, may or may not have taken effect; a new call is a
 *   new request (it gets a new number), so read to find out before writing again.
 */
export interface UnderstudyClient {
  /** Mounts segment `segmentId` of `size` bytes on storage node `nodeId`. */
  mountSegment(segmentId: string, nodeId: string, size: number): Promise<Ack>;
  /** Unmounts a segment that holds no replicas. */
  unmountSegment(segmentId: string): Promise<Ack>;
  /**
   * Starts a put: allocates `replicaNum` replicas of `size` bytes on distinct storage nodes
   * and resolves with their placement (status `processing`) once it is committed. A key that
   * exists is refused with `OBJECT_EXISTS` carrying the existing placement (`details`).
   */
  putStart(key: string, size: number, replicaNum: number): Promise<Placement>;
  /** Completes a started put: its replicas become `complete` and the object readable. */
  putEnd(key: string): Promise<Ack>;
  /** Abandons a started put and frees its replicas. */
  putRevoke(key: string): Promise<Ack>;
  /** Removes an object and frees its replicas; refused with `LEASED` while a read lease is held. */
  remove(key: string): Promise<Ack>;
  /** The committed record of `key`; grants a read lease on it. `OBJECT_NOT_FOUND` if absent. */
  get(key: string): Promise<ObjectRecord>;
  /** Whether `key` exists in the committed state. */
  exists(key: string): Promise<boolean>;
  /**
   * Starts up to 1000 puts in one request, decided in order; one result per item. Each item is
   * a call of the session (its own request number): retried as a whole on retryable failures,
   * the items a lost attempt committed get their original results.
   */
  putStartBatch(items: readonly PutStartItem[]): Promise<BatchResult<Placement>[]>;
  /** Completes up to 1000 puts in one request; one result per key. */
  putEndBatch(keys: readonly string[]): Promise<BatchResult<Ack>[]>;
  /** The session id this client sends with its writes (32 lowercase hex digits). */
  readonly sessionId: string;
  /** Subscribes to failover events; returns the unsubscribe function. */
  on(event: 'failover', listener: (event: FailoverEvent) => void): () => void;
  /** Stops the client: pending retries end with `CLOSED`; closes the connection it opened. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The existing placement an `OBJECT_EXISTS` error carries, or undefined for other errors. */
export function objectExistsDetails(error: unknown): ObjectExistsDetails | undefined {
  if (!(error instanceof ApiError) || error.code !== 'OBJECT_EXISTS') return undefined;
  const parsed = objectExistsDetailsSchema.safeParse(error.details);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The client-side ApiError for a transport failure: the code and retryability its class states
 * (see `wireCodes.ts`); an unknown failure is `UNAVAILABLE`.
 */
function transportError(err: unknown): ApiError {
  return new ApiError(
    { message: (err as Error).message, ...transportFailure(err) },
    { cause: err },
  );
}

class Client implements UnderstudyClient {
  readonly #listeners = new Set<(event: FailoverEvent) => void>();
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #requestTimeoutMs: number;
  readonly #deadlineMs: number;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #sleeps = new Set<() => void>();
  readonly #stopHearing: (() => void) | undefined;
  #closed = false;
  readonly sessionId: string;
  /** The next request number of the session. */
  #nextRequestNo = 1;
  /** Request numbers of write calls not answered yet. */
  readonly #pending = new Set<number>();
  /** No number below this is pending (the lowest pending one, or #nextRequestNo). */
  #oldestPending = 1;
  readonly #coalescer: WriteCoalescer | undefined;

  constructor(
    private readonly transport: ApiClientTransport,
    private readonly ownsTransport: boolean,
    options: ClientOptions,
  ) {
    if (options.clock === undefined) throw new TypeError('Client: a clock is required');
    this.#clock = options.clock;
    this.#random = options.random ?? Math.random;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 2000;
    this.#deadlineMs = options.deadlineMs ?? 15_000;
    this.#initialMs = options.backoff?.initialMs ?? 50;
    this.#maxMs = options.backoff?.maxMs ?? 1000;
    if (options.onFailover !== undefined) this.#listeners.add(options.onFailover);
    this.sessionId = options.sessionId ?? randomBytes(16).toString('hex');
    if (!/^[0-9a-f]{32}$/.test(this.sessionId))
      throw new TypeError('createClient: sessionId must be 32 lowercase hex digits');
    // A new primary announces itself: whoever is waiting out a backoff retries now.
    this.#stopHearing = transport.onListening?.(() => this.#wakeSleepers());
    this.#coalescer =
      options.coalesce === false
        ? undefined
        : new WriteCoalescer(
            {
              call: (op, encode, deadline) => this.#call(op, encode, deadline),
              session: () => ({ id: this.sessionId, oldestPending: this.#lowestPending() }),
              now: () => this.#clock.monotonicNow(),
            },
            options.coalesce,
          );
  }

  mountSegment(segmentId: string, nodeId: string, size: number): Promise<Ack> {
    return this.#write('mountSegment', { segmentId, nodeId, size });
  }
  unmountSegment(segmentId: string): Promise<Ack> {
    return this.#write('unmountSegment', { segmentId });
  }
  putStart(key: string, size: number, replicaNum: number): Promise<Placement> {
    return this.#write('putStart', { key, size, replicaNum });
  }
  putEnd(key: string): Promise<Ack> {
    return this.#write('putEnd', { key });
  }
  putRevoke(key: string): Promise<Ack> {
    return this.#write('putRevoke', { key });
  }
  remove(key: string): Promise<Ack> {
    return this.#write('remove', { key });
  }
  get(key: string): Promise<ObjectRecord> {
    return this.#call('get', { key });
  }
  async exists(key: string): Promise<boolean> {
    return (await this.#call('exists', { key })).exists;
  }
  async putStartBatch(items: readonly PutStartItem[]): Promise<BatchResult<Placement>[]> {
    const { results } = await this.#write(
      'putStartBatch',
      { items: items.map(({ key, size, replicaNum }) => ({ key, size, replicaNum })) },
      items.length,
    );
    return results.map((r) => (r.ok ? r : { ok: false, error: new ApiError(r.error) }));
  }
  async putEndBatch(keys: readonly string[]): Promise<BatchResult<Ack>[]> {
    const { results } = await this.#write('putEndBatch', { keys: [...keys] }, keys.length);
    return results.map((r) => (r.ok ? r : { ok: false, error: new ApiError(r.error) }));
  }

  on(_event: 'failover', listener: (event: FailoverEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#coalescer?.close((op) => this.#closedError(op));
    this.#stopHearing?.();
    this.#wakeSleepers();
    if (this.ownsTransport) await this.transport.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closedError(op: ApiOp): ApiError {
    return new ApiError({
      code: 'CLOSED',
      message: `${op}: the client is closed`,
    });
  }

  /** Ends every backoff wait now. */
  #wakeSleepers(): void {
    for (const wake of [...this.#sleeps]) wake();
  }

  /** Waits `ms` on the clock; returns early when the client is closed or a primary announces. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        this.#sleeps.delete(wake);
        timer.clear();
        resolve();
      };
      const timer = this.#clock.setTimeout(wake, ms);
      this.#sleeps.add(wake);
    });
  }

  /** One attempt: the decoded result, or the ApiError (server's or transport's). */
  async #attempt<Op extends ApiOp>(
    op: Op,
    body: Uint8Array,
    timeoutMs: number,
  ): Promise<{ ok: true; result: ApiResponse<Op> } | { ok: false; error: ApiError }> {
    let bytes: Uint8Array;
    try {
      bytes = await this.transport.request(op, body, timeoutMs);
    } catch (err) {
      return { ok: false, error: transportError(err) };
    }
    let reply: z.infer<typeof wireReplySchema>;
    let result: ApiResponse<Op>;
    try {
      reply = wireReplySchema.parse(decodeJson(bytes));
      if (!reply.ok) {
        if (reply.error.code === 'NOT_PRIMARY') this.transport.notPrimary?.();
        return { ok: false, error: new ApiError(reply.error) };
      }
      result = (responseSchemas[op] as unknown as z.ZodType<ApiResponse<Op>>).parse(reply.result);
    } catch (err) {
      return {
        ok: false,
        error: new ApiError(
          { code: 'INTERNAL', message: `${op}: malformed reply from the server` },
          { cause: err },
        ),
      };
    }
    return { ok: true, result };
  }

  /**
   * A write call of the session: takes `count` request numbers (one per item), sends them with
   * every attempt, and gives them up once the call is answered or given up.
   */
  async #write<Op extends ApiOp>(
    op: Op,
    request: Omit<ApiRequest<Op>, 'session'>,
    count = 1,
  ): Promise<ApiResponse<Op>> {
    if (this.#closed) throw this.#closedError(op);
    const requestNo = this.#nextRequestNo;
    this.#nextRequestNo += Math.max(1, count);
    for (let n = requestNo; n < this.#nextRequestNo; n++) this.#pending.add(n);
    try {
      if (count === 1 && this.#coalescer !== undefined && isWriteOp(op)) {
        const deadline = this.#clock.monotonicNow() + this.#deadlineMs;
        const fields = request as WriteFields;
        return await this.#coalescer.submit(op, fields, requestNo, deadline);
      }
      return await this.#call(op, () =>
        encodeJson({
          ...request,
          session: { id: this.sessionId, requestNo, oldestPending: this.#lowestPending() },
        }),
      );
    } finally {
      for (let n = requestNo; n < requestNo + Math.max(1, count); n++) this.#pending.delete(n);
    }
  }

  /** The lowest request number still waiting for an answer. */
  #lowestPending(): number {
    while (this.#oldestPending < this.#nextRequestNo && !this.#pending.has(this.#oldestPending))
      this.#oldestPending++;
    return this.#oldestPending;
  }

  /**
   * One call: attempts with retries of the retryable failures until `deadlineMs` (or the given
   * absolute `deadline`). `encode` makes each attempt's body (a write's tells the current lowest
   * pending request number).
   */
  async #call<Op extends ApiOp>(
    op: Op,
    encode: ApiRequest<Op> | (() => Uint8Array),
    deadlineAt?: number,
  ): Promise<ApiResponse<Op>> {
    if (this.#closed) throw this.#closedError(op);
    const bodyOf = typeof encode === 'function' ? encode : (): Uint8Array => encodeJson(encode);
    let body = bodyOf();
    if (body.byteLength > MAX_REQUEST_BYTES) {
      throw new ApiError({
        code: 'REQUEST_TOO_LARGE',
        message: `${op} request of ${body.byteLength} bytes exceeds ${MAX_REQUEST_BYTES} bytes`,
        limit: MAX_REQUEST_BYTES,
      });
    }
    const start = this.#clock.monotonicNow();
    const deadline = deadlineAt ?? start + this.#deadlineMs;
    let lastRetryable: ApiError | undefined;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) body = bodyOf();
      const remaining = deadline - this.#clock.monotonicNow();
      const outcome = await this.#attempt(
        op,
        body,
        Math.max(1, Math.min(this.#requestTimeoutMs, remaining)),
      );
      if (this.#closed) throw this.#closedError(op);
      const answered = outcome.ok || !RETRYABLE_CODES.has(outcome.error.code);
      if (answered && lastRetryable !== undefined) {
        this.#emit({
          op,
          attempt,
          code: lastRetryable.code,
          waitedMs: this.#clock.monotonicNow() - start,
        });
      }
      if (outcome.ok) return outcome.result;
      if (answered) throw outcome.error;
      lastRetryable = outcome.error;
      const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(attempt - 1, 30));
      const wait = Math.floor(this.#random() * ceiling);
      const now = this.#clock.monotonicNow();
      if (now + wait >= deadline) {
        throw new ApiError(
          {
            ...outcome.error.toWire(),
            message: `${op} gave up after ${attempt} attempt(s) in ${now - start} ms: ${outcome.error.message}`,
          },
          { cause: outcome.error },
        );
      }
      await this.#sleep(wait);
      if (this.#closed) throw this.#closedError(op);
    }
  }

  #emit(event: FailoverEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // a listener's failure is not the call's
      }
    }
  }
}

/**
 * A client of `options.cluster` over `transport` (closed by {@link UnderstudyClient.close} when
 * `ownsTransport`), on `clock`. `createClient` (nats.ts) is the public way in.
 */
export function clientOver(
  transport: ApiClientTransport,
  ownsTransport: boolean,
  options: ClientOptions,
  clock: Clock,
): UnderstudyClient {
  assertClusterName(options.cluster);
  return new Client(transport, ownsTransport, { ...options, clock: options.clock ?? clock });
}
