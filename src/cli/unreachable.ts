import { UnderstudyError } from '../domain/model/understudyError.ts';
// How every operator command says it cannot reach NATS or etcd: the address it tried, the cause,
// and the flag (and variable) that sets the address.

/** A service a command needs does not answer. */
export class UnreachableError extends UnderstudyError {
  override readonly name = 'UnreachableError';
  readonly code = 'UNREACHABLE';
  override readonly retryable = true;
  constructor(
    readonly service: 'NATS' | 'etcd',
    readonly addresses: readonly string[],
    cause: unknown,
  ) {
    const flag = service === 'NATS' ? '--nats or UNDERSTUDY_NATS' : '--etcd or UNDERSTUDY_ETCD';
    super(
      `cannot reach ${service} at ${addresses.join(',')}: ${causeText(cause)} (the address is set by ${flag})`,
      { cause },
    );
  }
}

/** An error and its causes as one line: `etcd get failed: 14 UNAVAILABLE: No connection...`. */
export function causeText(error: unknown): string {
  const parts: string[] = [];
  let at: unknown = error;
  for (let depth = 0; at !== undefined && at !== null && depth < 5; depth += 1) {
    const text =
      at instanceof Error ? at.message : typeof at === 'string' ? at : JSON.stringify(at);
    if (text !== '' && !parts.some((p) => p.includes(text))) parts.push(text);
    at = at instanceof Error ? at.cause : undefined;
  }
  return parts.join(': ') || 'no answer';
}

/** Runs `op`, turning its failure into an {@link UnreachableError} for `service` at `addresses`. */
export async function reaching<T>(
  service: 'NATS' | 'etcd',
  addresses: readonly string[],
  op: () => Promise<T>,
): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new UnreachableError(service, addresses, err);
  }
}
