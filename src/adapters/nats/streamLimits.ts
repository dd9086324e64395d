/**
 * What the OpLog stream's settings must satisfy, and the error for a stream (or bucket)
 * configuration that JetStream refuses. The append window (ports/appendWindow.ts)
 * is what the settings check (config/) reads, without loading the NATS client.
 */
import { UnderstudyError } from '../../domain/model/understudyError.ts';

// The append window lives with the OpLog port (the settings check reads it too).
export {
  APPEND_ACK_TIMEOUT_MS,
  APPEND_RESOLVE_TIMEOUT_MS,
  OPLOG_DUPLICATE_WINDOW_MS,
  minDuplicateWindowMs,
} from '../../ports/appendWindow.ts';

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
