import type { InspectionEvent, Observer } from 'xstate';
import { DEFAULT_EVICTION_POLICY, type EvictionPolicy } from '../domain/decide/eviction.ts';
import type { ApiClientTransport, ApiServerTransport } from '../ports/apiTransport.ts';
import type { Clock } from '../ports/clock.ts';
import type { CheckpointStore } from '../ports/checkpointStore.ts';
import type { Elector, MemberRecord } from '../ports/elector.ts';
import type { OpLog } from '../ports/opLog.ts';
import type { RequestObserver } from '../observe/metrics.ts';
import type { AnyNodeDomain } from './nodeDomain.ts';

/** What the runtime logs through; pino's logger fits. */
export interface RuntimeLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface NodeRuntimeConfig {
  /** The lease TTL (ms); also how long objects count as read-leased after a promotion. */
  readonly leaseTtlMs: number;
  readonly maxLagForPromotion: number;
  readonly campaignBaseDelayMs: number;
  readonly campaignDelayPerEntryMs: number;
  readonly campaignMaxDelayMs: number;
  /**
   * More to wait (ms) before campaigning, given the ids of the live members (this node's own
   * may be missing): a node hosting one group of several lets the group's preferred node
   * campaign first (src/domain/model/groupPreference.ts). Not applied when a switchover named
   * the node to take over. Default: none.
   */
  readonly campaignPreferenceMs?: (memberIds: readonly string[]) => number;
  readonly retryDelayMs: number;
  /** How often a follower reports progress to the machine and reads the log's end (ms). */
  readonly progressIntervalMs: number;
  /** How often the node refreshes its member record (ms). */
  readonly memberIntervalMs: number;
  /** How long a handing-over primary waits for an eligible standby (ms). */
  readonly handoverTimeoutMs: number;
  readonly eviction: EvictionPolicy;
  readonly evictionIntervalMs: number;
  /** How often a standby runs a verification round (ms; default 30 s). */
  readonly verifyIntervalMs: number;
  /** Fraction of the shards a round samples (default 0.1: every shard within 10 rounds). */
  readonly verifyFraction: number;
  /** Most keys a round sends per shard (default 100). */
  readonly verifyMaxKeysPerShard: number;
  /** A standby further behind than this many entries is told to full-sync (default 1000). */
  readonly maxSyncGap: number;
  /** More mismatches than this in one round: full sync instead of repair (default 100). */
  readonly maxMismatches: number;
  /** Timeout of one admin request (verification round, full-sync chunk) (ms). */
  readonly adminTimeoutMs: number;
  /**
   * A primary whose oldest append has not been acknowledged for this long (ms; default the
   * lease TTL) cannot reach the log: it steps down, so a node that can takes over.
   */
  readonly appendStallMs?: number;
  /** A promotion (drain and fence) not done within this long (ms; default the TTL) gives up. */
  readonly promoteTimeoutMs?: number;
  /**
   * A standby whose follower delivered nothing for this long (ms) while the log holds entries
   * it has not applied drops the follower and follows again (default 1000).
   */
  readonly followStallMs: number;
  /** A checkpoint is due after this many entries since the newest one (default 100,000). */
  readonly checkpointIntervalEntries: number;
  /** ...or once the newest one is this old and entries came since (ms; default 10 min). */
  readonly checkpointIntervalMs: number;
  /** Checkpoints kept; the stream is trimmed below the oldest of them (default 3). */
  readonly checkpointKeep: number;
  /** How often a node checks whether a checkpoint is due (ms; default 5 s). */
  readonly checkpointCheckMs: number;
}

export const DEFAULT_RUNTIME_CONFIG: NodeRuntimeConfig = {
  leaseTtlMs: 5000,
  maxLagForPromotion: 1000,
  campaignBaseDelayMs: 50,
  campaignDelayPerEntryMs: 1,
  campaignMaxDelayMs: 1000,
  retryDelayMs: 1000,
  progressIntervalMs: 200,
  memberIntervalMs: 1000,
  handoverTimeoutMs: 3000,
  eviction: DEFAULT_EVICTION_POLICY,
  evictionIntervalMs: 1000,
  verifyIntervalMs: 30_000,
  verifyFraction: 0.1,
  verifyMaxKeysPerShard: 100,
  maxSyncGap: 1000,
  maxMismatches: 100,
  adminTimeoutMs: 10_000,
  followStallMs: 1000,
  checkpointIntervalEntries: 100_000,
  checkpointIntervalMs: 10 * 60_000,
  checkpointKeep: 3,
  checkpointCheckMs: 5_000,
};

/**
 * The cluster's OpLog key as recorded outside the log (in etcd), so a node that passes over a
 * message signed under another key can tell a forgery (the cluster's key is still its own) from
 * its own key being out of date (the cluster moved to another: it can read nothing more).
 */
export interface ClusterKeyCheck {
  readonly cluster: string;
  /** This node's key id (`none` without a key). */
  readonly keyId: string;
  /** Where the cluster's key id is recorded (named in the refusal). */
  readonly recordedAt: string;
  /** The key id the cluster records now (`none`: an unsigned log; undefined: none recorded). */
  clusterKeyId(): Promise<string | undefined>;
}

export interface NodeRuntimeDeps {
  readonly nodeId: string;
  /**
   * The domain the node runs (default: the metadata, `metadataNodeDomain(config.eviction)`).
   * The node reaches its state only through it.
   */
  readonly domain?: AnyNodeDomain;
  /** How logs and `/status` name the elector's store while waiting for it (`etcd at ...`). */
  readonly coordinatorName?: string;
  /** Where this node answers status requests (published in the leader key and member record). */
  readonly address: string;
  readonly opLog: OpLog;
  readonly elector: Elector;
  readonly apiServer: ApiServerTransport;
  readonly clock: Clock;
  readonly logger: RuntimeLogger;
  readonly config?: Partial<NodeRuntimeConfig>;
  /**
   * The admin channel (verification, full sync): the server side the primary listens on, the
   * client side a standby asks through. Without them a standby does not verify and a full
   * sync re-folds the log from its first entry.
   */
  readonly admin?: {
    readonly server: ApiServerTransport;
    readonly client: ApiClientTransport;
    /** Largest admin reply the transport carries (bytes). */
    readonly maxReplyBytes?: number;
  };
  /**
   * Asks a peer (at its member record's address) for its role and applied seq, for a
   * switchover's catch-up check. Without it the member records (refreshed every
   * `memberIntervalMs`) are used.
   */
  readonly probePeer?: (member: MemberRecord) => Promise<{ role: string; appliedSeq: number }>;
  /**
   * The cluster's checkpoints. Without it a node never writes one, restores only by folding a
   * stream that still starts at entry 1, and the stream is never trimmed.
   */
  readonly checkpoints?: CheckpointStore;
  /** Receives each API request's time to answer, by op (the node's `/metrics`). */
  readonly metrics?: RequestObserver;
  /**
   * The cluster's recorded OpLog key: checked when a message signed under another key is passed
   * over; when the cluster's key is no longer this node's, the node stops (refusal). Without
   * it such messages are only passed over (and count as lag).
   */
  readonly clusterKey?: ClusterKeyCheck;
  /**
   * How the machine's actor is named for inspectors (`<name>/masterNode`; default the node
   * id): a process hosting a member of every group names each (`n1/g2`).
   */
  readonly inspectName?: string;
  /** An XState inspection observer (`--inspect`): sees every actor, event and snapshot. */
  readonly inspect?: Observer<InspectionEvent>;
  /**
   * TEST ONLY: breaks the node on purpose, to show the simulation's checkers catch the break.
   * `refusalsBeforeCommit`: refusals are answered as soon as they are decided, before the
   * appends they were judged against are acknowledged (what main did before client sessions).
   */
  readonly brokenForTest?: { readonly refusalsBeforeCommit?: boolean };
}
