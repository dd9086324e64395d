// The settings of the failover simulation: its cluster, its nodes' TTL and checkpoints, and the
// slack its invariants allow.

export const SIM_CLUSTER = 'sim';
/** Lease TTL of every node (ms); also the read-lease TTL after a promotion. */
export const SIM_TTL_MS = 2000;
/**
 * Liveness bound: once faults stop, a primary serves within TTL + this (ms). It covers the
 * campaign delay, a fenced node's retry delay and the client's retry backoff.
 */
export const LIVENESS_SLACK_MS = 4000;
/**
 * No node holds the leader key for longer than one TTL + this (ms) while it is not a running
 * primary: the keep-alive granularity and the coordinator's expiry check.
 */
export const LEADER_KEY_SLACK_MS = 100;
/** Nodes write a checkpoint every this many entries; the stream keeps what the newest one needs. */
export const SIM_CHECKPOINT_EVERY = 4;
/**
 * The node settings of the simulation beyond the TTL: verification rounds every 500 ms (each a
 * quarter of the shards), a checkpoint check every 250 ms, and admin requests (rounds,
 * full-sync chunks) that give up after 1 s.
 */
export const SIM_NODE_CONFIG = {
  leaseTtlMs: SIM_TTL_MS,
  verifyIntervalMs: 500,
  verifyFraction: 0.25,
  adminTimeoutMs: 1000,
  checkpointIntervalEntries: SIM_CHECKPOINT_EVERY,
  checkpointKeep: 1,
  checkpointCheckMs: 250,
} as const;
/** Simulated time at the start of a world (ms). */
export const START_MS = 1_000_000;
