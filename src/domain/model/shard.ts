import CRC32 from 'crc-32';

/** Number of object shards: the unit of verification sampling. */
export const SHARD_COUNT = 1024;
/** Each shard is split into this many buckets, so a fold copies a small map (internal). */
export const BUCKETS_PER_SHARD = 256;
/** Buckets of the session table (internal): a write copies one small bucket, not the table. */
export const SESSION_BUCKETS = 256;

/**
 * Unsigned CRC32 of the key's UTF-8 bytes: stable across nodes and versions. (`CRC32.str`
 * hashes the UTF-8 encoding without allocating it.)
 */
export function keyHash(key: string): number {
  return CRC32.str(key, 0) >>> 0;
}

/** The shard (0..SHARD_COUNT-1) of a key: CRC32(UTF-8 key) mod 1024. Stable forever. */
export function shardOf(key: string): number {
  return keyHash(key) % SHARD_COUNT;
}

/** The bucket within its shard (internal layout). */
export function bucketOf(hash: number): number {
  return Math.floor(hash / SHARD_COUNT) % BUCKETS_PER_SHARD;
}

/** The session-table bucket of a session id. */
export function sessionBucketOf(sessionId: string): number {
  return (CRC32.str(sessionId, 0) >>> 0) % SESSION_BUCKETS;
}
