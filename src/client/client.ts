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
import {
  objectExistsDetailsSchema,
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
import { ApiError, encodeJson } from '../api/wire.ts';
import type { ObjectRecord } from '../domain/model/types.ts';
import { type ApiClientTransport } from '../ports/apiTransport.ts';
import type { Clock } from '../ports/clock.ts';
import { ClientSession } from './clientSession.ts';
import { WriteCoalescer, type CoalesceOptions, type WriteFields } from './coalescer.ts';
import { RetryingCaller, type BackoffOptions, type FailoverEvent } from './retryingCaller.ts';

const WRITE_OP_SET: ReadonlySet<string> = new Set(WRITE_OPS);

function isWriteOp(op: ApiOp): op is WriteOp {
  return WRITE_OP_SET.has(op);
}

export type { Ack, ObjectExistsDetails, Placement, PutStartItem } from '../api/schema.ts';
export type { CoalesceOptions } from './coalescer.ts';
export { ApiError, type ApiErrorCode } from '../api/wire.ts';

export interface ClientOptions {
  /** NATS server URL(s); used unless `transport` is given. */
  readonly servers?: string | string[];
  /** The cluster name: the API subjects are `understudy.<cluster>.api.<op>`. */
  readonly cluster: string;
  /** A transport to use instead of connecting to `servers` (tests, simulation). Not closed by the client. */
  readonly transport?: ApiClientTransport;
  /**
   * The cluster's group count (default 1): must be the `--groups` the cluster was created with.
   * With several groups the client routes each call to its key's group (`<cluster>-g<g>`), keeps
   * a session per group and fans segment mounts out to every group (groupedClient.ts).
   */
  readonly groups?: number;
  /**
   * With `groups` > 1, instead of `transport`: the transport to a group's cluster name
   * (`<cluster>-g<g>`) for tests and the simulation. Not closed by the client.
   */
  readonly transportFor?: (groupCluster: string) => ApiClientTransport;
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

/** The client of one cluster (or of one group of a cluster: see groupedClient.ts). */
export class Client implements UnderstudyClient {
  readonly #clock: Clock;
  readonly #caller: RetryingCaller;
  readonly #session: ClientSession;
  readonly sessionId: string;
  readonly #coalescer: WriteCoalescer | undefined;

  constructor(
    private readonly transport: ApiClientTransport,
    private readonly ownsTransport: boolean,
    options: ClientOptions,
  ) {
    const { clock } = options;
    if (clock === undefined) throw new TypeError('Client: a clock is required');
    this.#clock = clock;
    this.#session = new ClientSession(options.sessionId);
    this.sessionId = this.#session.id;
    this.#caller = new RetryingCaller(transport, { ...options, clock });
    this.#coalescer =
      options.coalesce === false
        ? undefined
        : new WriteCoalescer(
            {
              call: (op, encode, deadline) => this.#caller.call(op, encode, deadline),
              session: () => ({ id: this.sessionId, oldestPending: this.#session.lowestPending() }),
              now: () => this.#clock.monotonicNow(),
            },
            options.coalesce,
          );
  }

  mountSegment(segmentId: string, nodeId: string, size: number): Promise<Ack> {
    return this.#write('mountSegment', { segmentId, nodeId, size });
  }
  /** Mounts `[base, base + size)` of segment `segmentId` (a group's slice of it). */
  mountSegmentSlice(
    segmentId: string,
    nodeId: string,
    slice: { readonly base: number; readonly size: number },
  ): Promise<Ack> {
    const { base, size } = slice;
    return this.#write('mountSegment', { segmentId, nodeId, size, ...(base > 0 ? { base } : {}) });
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
    return this.#caller.onFailover(listener);
  }

  async close(): Promise<void> {
    if (this.#caller.closed) return;
    this.#coalescer?.close((op) => this.#caller.closedError(op));
    this.#caller.close();
    if (this.ownsTransport) await this.transport.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #call<Op extends ApiOp>(op: Op, request: ApiRequest<Op>): Promise<ApiResponse<Op>> {
    return this.#caller.call(op, request);
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
    if (this.#caller.closed) throw this.#caller.closedError(op);
    const requestNo = this.#session.take(count);
    try {
      if (count === 1 && this.#coalescer !== undefined && isWriteOp(op)) {
        const deadline = this.#clock.monotonicNow() + this.#caller.deadlineMs;
        const fields = request as WriteFields;
        return await this.#coalescer.submit(op, fields, requestNo, deadline);
      }
      return await this.#caller.call(op, () =>
        encodeJson({
          ...request,
          session: { id: this.sessionId, requestNo, oldestPending: this.#session.lowestPending() },
        }),
      );
    } finally {
      this.#session.release(requestNo, count);
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
