/**
 * The client's calls to the cluster: one attempt at a time over the transport, the retryable
 * failures (`NOT_PRIMARY`, `TIMEOUT`, `NO_RESPONDERS`, `UNAVAILABLE`) retried with jittered
 * exponential backoff until a deadline, backoff waits ended early when a new primary announces
 * itself, and a {@link FailoverEvent} for every call answered after retryable failures.
 */
import type { z } from 'zod';
import { responseSchemas, type ApiOp, type ApiRequest, type ApiResponse } from '../api/schema.ts';
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
import type { ApiClientTransport } from '../ports/apiTransport.ts';
import type { Clock } from '../ports/clock.ts';

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

/** What the retries need of the client's options (each as `ClientOptions` describes it). */
export interface RetryOptions {
  readonly clock: Clock;
  readonly random?: () => number;
  readonly requestTimeoutMs?: number;
  readonly deadlineMs?: number;
  readonly backoff?: BackoffOptions;
  readonly onFailover?: (event: FailoverEvent) => void;
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

/**
 * Sends the client's calls with retries (see the file's doc). Once closed, every call ends
 * with `CLOSED` at its next step and every backoff wait ends now.
 */
export class RetryingCaller {
  readonly #listeners = new Set<(event: FailoverEvent) => void>();
  readonly #clock: Clock;
  readonly #random: () => number;
  /** Total time a call may spend retrying (ms). */
  readonly deadlineMs: number;
  readonly #requestTimeoutMs: number;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #sleeps = new Set<() => void>();
  readonly #stopHearing: (() => void) | undefined;
  #closed = false;

  constructor(
    private readonly transport: ApiClientTransport,
    options: RetryOptions,
  ) {
    this.#clock = options.clock;
    this.#random = options.random ?? Math.random;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 2000;
    this.deadlineMs = options.deadlineMs ?? 15_000;
    this.#initialMs = options.backoff?.initialMs ?? 50;
    this.#maxMs = options.backoff?.maxMs ?? 1000;
    if (options.onFailover !== undefined) this.#listeners.add(options.onFailover);
    // A new primary announces itself: whoever is waiting out a backoff retries now.
    this.#stopHearing = transport.onListening?.(() => this.#wakeSleepers());
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Subscribes to failover events; returns the unsubscribe function. */
  onFailover(listener: (event: FailoverEvent) => void): () => boolean {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops: no more hearing of new primaries, and every backoff wait ends now. */
  close(): void {
    this.#closed = true;
    this.#stopHearing?.();
    this.#wakeSleepers();
  }

  /** The `CLOSED` error of a call of `op`. */
  closedError(op: ApiOp): ApiError {
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
   * One call: attempts with retries of the retryable failures until `deadlineMs` (or the given
   * absolute `deadline`). `encode` makes each attempt's body (a write's tells the current lowest
   * pending request number).
   */
  async call<Op extends ApiOp>(
    op: Op,
    encode: ApiRequest<Op> | (() => Uint8Array),
    deadlineAt?: number,
  ): Promise<ApiResponse<Op>> {
    if (this.#closed) throw this.closedError(op);
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
    const deadline = deadlineAt ?? start + this.deadlineMs;
    let lastRetryable: ApiError | undefined;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) body = bodyOf();
      const remaining = deadline - this.#clock.monotonicNow();
      const outcome = await this.#attempt(
        op,
        body,
        Math.max(1, Math.min(this.#requestTimeoutMs, remaining)),
      );
      if (this.#closed) throw this.closedError(op);
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
      if (this.#closed) throw this.closedError(op);
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
