/** Limits every command and event is validated against (decide, eventCodec). */

/** Longest object key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Longest segment id, in UTF-8 bytes. */
export const MAX_SEGMENT_ID_BYTES = 256;
/** Longest storage node id, in UTF-8 bytes. */
export const MAX_NODE_ID_BYTES = 256;
/** Largest object, in bytes (1 TiB). */
export const MAX_OBJECT_SIZE = 2 ** 40;
/** Largest segment, in bytes (1 PiB): offsets and lengths stay safe integers. */
export const MAX_SEGMENT_SIZE = 2 ** 50;
/** Most replicas one object may have. */
export const MAX_REPLICAS = 8;
/** Most keys one EVICTION event may carry. */
export const MAX_EVICTION_KEYS = 100_000;
/** Largest epoch, seq or timestamp: a safe integer. */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * A session with nothing logged for this long (in logged time: entry timestamps) is forgotten,
 * with the results of its requests: one hour. A client must not retry a call for longer (its
 * deadline is 15 s by default); a retry after that is applied as a new request. Logged time runs
 * at most twice as fast as the primary's monotonic clock, whatever its wall clock does
 * (node/state/loggedClock.ts), so that is at least half an hour of real time.
 */
export const SESSION_TTL_MS = 60 * 60 * 1000;
/** How often (in logged time) the fold sweeps out idle sessions. */
export const SESSION_SWEEP_INTERVAL_MS = 60 * 1000;
/**
 * Most results one session keeps: a client with more calls in flight loses the oldest results
 * (a retry of one of those is refused with REQUEST_EXPIRED, never applied twice).
 */
export const MAX_SESSION_RESULTS = 10_000;
/** Most sessions the table holds: past it, the session idle the longest is forgotten. */
export const MAX_SESSIONS = 100_000;
/** Largest request number of a session. */
export const MAX_REQUEST_NO = Number.MAX_SAFE_INTEGER;
