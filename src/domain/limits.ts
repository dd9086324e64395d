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
