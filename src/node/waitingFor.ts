import type { Clock, TimerHandle } from '../ports/clock.ts';
import type { RuntimeLogger } from './nodeRuntimeConfig.ts';

/** A wait says what it waits for once it has lasted this long without a word (ms)... */
export const FIRST_WAITING_MS = 1000;
/** ...and again whenever it has been silent this long (ms). */
export const WAITING_EVERY_MS = 5000;
/** Longest pause between two attempts of {@link Waiting.retry} (ms). */
export const MAX_RETRY_WAIT_MS = 5000;

/** The pause before attempt `attempt + 1`: 500 ms, doubling, at most {@link MAX_RETRY_WAIT_MS}. */
export const retryWait = (attempt: number): number =>
  Math.min(MAX_RETRY_WAIT_MS, 500 * 2 ** (attempt - 1));

/** What a wait needs: where it logs and the clock its timers run on. */
export interface WaitingDeps {
  readonly logger: RuntimeLogger;
  readonly clock: Clock;
}

/** One dependency reached by attempts (see {@link Waiting.retry}). */
export interface RetrySpec<T> {
  /** The dependency as the log and `/status` name it (`NATS at nats://...`). */
  readonly what: string;
  /** Log events: `<event>Unavailable` per failed attempt, `<event>Connected` once it answers. */
  readonly event: string;
  readonly attempt: () => Promise<T>;
  /** The error an attempt's failure is to reject with at once (it will not fix itself). */
  readonly fatal?: (err: unknown) => Error | undefined;
}

/**
 * The one way a starting node waits for what it depends on (NATS, etcd, its lease, its member
 * record): it shows the dependency as {@link current} (for `/status`) and logs `waiting for
 * <what>` within {@link FIRST_WAITING_MS} and then every {@link WAITING_EVERY_MS} while the wait
 * is silent, so an attempt that hangs is reported as promptly as one that fails.
 */
export class Waiting {
  #what: string | undefined;
  /** When the current wait last logged (monotonic ms). */
  #saidAt = 0;

  /** The dependency waited for right now, if any. */
  get current(): string | undefined {
    return this.#what;
  }

  /**
   * Settles like `step`; meanwhile shows `what` as {@link current} and logs `waiting for <what>`
   * whenever the wait has been silent for a while (with `lastError()`, if any).
   */
  async for<T>(
    deps: WaitingDeps,
    what: string,
    step: Promise<T>,
    lastError?: () => unknown,
  ): Promise<T> {
    const { clock, logger } = deps;
    const started = clock.monotonicNow();
    this.#saidAt = started;
    let timer: TimerHandle | undefined;
    const check = (): void => {
      const now = clock.monotonicNow();
      const silence = this.#saidAt === started ? FIRST_WAITING_MS : WAITING_EVERY_MS;
      if (now - this.#saidAt >= silence) {
        const err = lastError?.();
        logger.warn(
          {
            event: 'waiting',
            dependency: what,
            waitedMs: now - started,
            ...(err === undefined ? {} : { err: describe(err) }),
          },
          `waiting for ${what}`,
        );
        this.#saidAt = now;
      }
      const next = this.#saidAt === started ? FIRST_WAITING_MS : WAITING_EVERY_MS;
      timer = clock.setTimeout(check, Math.max(1, this.#saidAt + next - now));
    };
    timer = clock.setTimeout(check, FIRST_WAITING_MS);
    this.#what = what;
    try {
      return await step;
    } finally {
      timer.clear();
      if (this.#what === what) this.#what = undefined;
    }
  }

  /**
   * Runs `spec.attempt` until it succeeds, pausing {@link retryWait} between attempts; each
   * failure logs `waiting for <what>: <error>; retrying in <ms> ms` (`<event>Unavailable`), an
   * attempt that hangs is reported as {@link for} does, and success after a failure logs
   * `<event>Connected`. Rejects at once when `spec.fatal` names the failure fatal.
   */
  async retry<T>(deps: WaitingDeps, spec: RetrySpec<T>): Promise<T> {
    let lastError: unknown;
    const attempts = async (): Promise<T> => {
      for (let attempt = 1; ; attempt++) {
        try {
          const value = await spec.attempt();
          if (attempt > 1) {
            deps.logger.info(
              { event: `${spec.event}Connected`, dependency: spec.what },
              `connected to ${spec.what}`,
            );
          }
          return value;
        } catch (err) {
          const fatal = spec.fatal?.(err);
          if (fatal !== undefined) throw fatal;
          lastError = err;
          const waitMs = retryWait(attempt);
          deps.logger.warn(
            {
              event: `${spec.event}Unavailable`,
              dependency: spec.what,
              attempt,
              retryInMs: waitMs,
              err: describe(err),
            },
            `waiting for ${spec.what}: ${describe(err)}; retrying in ${waitMs} ms`,
          );
          this.#saidAt = deps.clock.monotonicNow();
          await new Promise<void>((resolve) => deps.clock.setTimeout(resolve, waitMs));
        }
      }
    };
    return this.for(deps, spec.what, attempts(), () => lastError);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err);
}
