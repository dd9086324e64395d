/**
 * The window in which an OpLog append whose acknowledgement was lost is resolved: how long an
 * append waits, how long it is retried and read back, and how long the log must recognise a
 * re-sent message. The NATS adapter sets its stream's duplicate window from it; the settings
 * check refuses an age limit below it.
 */

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
