import { Etcd3, type IOptions } from 'etcd3';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** Where to reach etcd: an existing client (not closed by the adapter) or how to open one. */
export type EtcdConnectionOptions =
  | Etcd3
  | {
      readonly endpoints: readonly string[];
      readonly auth?: { readonly username: string; readonly password: string };
      readonly credentials?: {
        readonly rootCertificate: Buffer;
        readonly privateKey?: Buffer;
        readonly certChain?: Buffer;
      };
    };

/** Default bound on one etcd call (ms): a call to an unreachable etcd rejects after this. */
export const DEFAULT_CALL_TIMEOUT_MS = 3_000;

/** etcd did not answer in time, or the connection failed: the caller may retry. */
export class EtcdUnavailableError extends UnderstudyError {
  override readonly name = 'EtcdUnavailableError';
  readonly code = 'ETCD_UNAVAILABLE';
  override readonly retryable = true;
  constructor(
    /** What was being done (`campaign`, `keepAlive`, ...). */
    readonly operation: string,
    /** The bound that passed, when it was a timeout. */
    readonly timeoutMs: number | undefined,
    options?: ErrorOptions,
  ) {
    super(
      timeoutMs === undefined
        ? `etcd ${operation} failed`
        : `etcd ${operation} did not answer within ${timeoutMs} ms`,
      options,
    );
  }
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = FaultHandling['global'] & object;
type Backoff = FaultHandling['watchBackoff'] & object;

/**
 * Runs each call once. etcd3's defaults retry failed calls (a retried compare-and-set whose
 * first attempt was applied then reads as a lost race) and open a circuit breaker for 5 s
 * after 3 failures (longer than a lease TTL): the adapters bound and retry calls themselves.
 */
const passThrough: Policy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }),
};

/** Reconnects a broken watch every 250 ms (etcd3's default backs off up to 30 s). */
const watchBackoff: Backoff = {
  duration: 250,
  next() {
    return watchBackoff;
  },
};

/** An open client, and whether the adapter owns it (and so closes it). */
export interface EtcdConnection {
  readonly client: Etcd3;
  readonly owned: boolean;
}

/**
 * Opens (or adopts) a client. An opened client gives every unary call a gRPC deadline of
 * `callTimeoutMs`, so no call waits forever on an unreachable etcd.
 */
export function openEtcd(
  options: EtcdConnectionOptions,
  callTimeoutMs = DEFAULT_CALL_TIMEOUT_MS,
): EtcdConnection {
  if (options instanceof Etcd3) return { client: options, owned: false };
  const client = new Etcd3({
    hosts: [...options.endpoints],
    dialTimeout: callTimeoutMs,
    faultHandling: { host: () => passThrough, global: passThrough, watchBackoff },
    defaultCallOptions: (context) =>
      context.isStream ? {} : { deadline: Date.now() + callTimeoutMs },
    ...(options.auth === undefined ? {} : { auth: { ...options.auth } }),
    ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } }),
  });
  return { client, owned: true };
}

/**
 * Settles like `promise`, or rejects with {@link EtcdUnavailableError} after `timeoutMs`
 * (real time: this bounds I/O, it is not a lease decision).
 */
export function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  operation: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new EtcdUnavailableError(operation, timeoutMs));
    }, timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(
          error instanceof EtcdUnavailableError
            ? error
            : new EtcdUnavailableError(operation, undefined, { cause: error }),
        );
      },
    );
  });
}

/** The key prefix of one cluster: `/understudy/<cluster>/`. */
export function clusterPrefix(cluster: string): string {
  if (cluster === '' || cluster.includes('/')) {
    throw new RangeError(
      `cluster name must be non-empty and contain no '/': ${JSON.stringify(cluster)}`,
    );
  }
  return `/understudy/${cluster}/`;
}
