/**
 * What the OpLog stream's settings must satisfy, and the error for a stream (or bucket)
 * configuration that JetStream refuses. No imports: the settings check (config/) reads these
 * without loading the NATS client.
 */
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** How long one append waits for its acknowledgement before it is read back (ms). */
export const APPEND_ACK_TIMEOUT_MS = 5_000;
/** How long an unacknowledged append is retried and read back before it is ambiguous (ms). */
export const APPEND_RESOLVE_TIMEOUT_MS = 30_000;

/**
 * The OpLog stream's duplicate window (ms): the server recognises a re-sent message by its id
 * for this long, which is what resolves an append whose acknowledgement was lost. It must
 * outlast every retry of one append: the first wait for the acknowledgement, the read-back
 * retries, and the last retry's own wait ({@link minDuplicateWindowMs}). JetStream refuses a
 * stream whose age limit is below its duplicate window, so a non-zero age limit must be at least
 * this long: the window is not shortened to fit an age limit, since it would then no longer
 * cover the retries.
 */
export const OPLOG_DUPLICATE_WINDOW_MS = 2 * 60_000;

/** The shortest duplicate window that covers every retry of one append (ms). */
export function minDuplicateWindowMs(ackTimeoutMs: number, resolveTimeoutMs: number): number {
  return 2 * ackTimeoutMs + resolveTimeoutMs;
}

/**
 * JetStream API error codes that refuse a stream's configuration: asking again cannot succeed
 * until the settings (or the server's configuration) change. 10052 invalid configuration
 * (e.g. "duplicates window can not be larger then max age", "maximum replicas is 5"), 10053
 * stream limits, 10058 name in use with another configuration, 10061 replicas not updatable,
 * 10065 subjects overlap another stream, 10074 replicas > 1 on a server that is not clustered,
 * 10113 the account requires max bytes, 10122 max bytes over the account's limit, 10133
 * negative replicas, 10027 the account's stream limit. Unavailability (503s such as 10008,
 * 10023, 10039) is not among them: it is waited out.
 */
export const STREAM_CONFIG_REFUSALS: ReadonlySet<number> = new Set([
  10027, 10052, 10053, 10058, 10061, 10065, 10074, 10113, 10122, 10133,
]);

/** The stream settings a refusal can be about. */
export type StreamSetting = 'maxAge' | 'maxBytes' | 'replicas' | 'duplicateWindow';

/**
 * JetStream refused the configuration of a stream or bucket (or it was refused before asking,
 * for a limit known to be refused). Retrying cannot help: a node exits naming the setting.
 */
export class StreamConfigError extends UnderstudyError {
  override readonly name = 'StreamConfigError';
  readonly code = 'STREAM_CONFIG';
  override readonly retryable = false;
  constructor(
    /** The stream or bucket refused. */
    readonly stream: string,
    /** The setting the refusal names, when it names one. */
    readonly setting: StreamSetting | undefined,
    /** The server's reason (its `description`). */
    readonly reason: string,
    /** The JetStream API error code (`err_code`), when the server refused. */
    readonly errCode: number | undefined,
    options?: ErrorOptions,
  ) {
    super(`NATS JetStream refused ${stream}: ${reason}`, options);
  }
}

/** The setting a refusal's description is about, if it names one. */
export function refusedSetting(description: string): StreamSetting | undefined {
  const text = description.toLowerCase();
  if (text.includes('max age') || text.includes('duplicates window')) return 'maxAge';
  if (text.includes('replicas')) return 'replicas';
  if (text.includes('max bytes') || text.includes('storage')) return 'maxBytes';
  return undefined;
}
