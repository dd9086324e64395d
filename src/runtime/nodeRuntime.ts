import {
  createActor,
  fromCallback,
  fromPromise,
  type Actor,
  type InspectionEvent,
  type Observer,
  type SnapshotFrom,
} from 'xstate';
import {
  masterNodeMachine,
  type MasterNodeEvent,
  type NodeRole,
} from '../../machines/masterNode.machine.ts';
import { createApiHandler } from '../api/handler.ts';
import { API_OPS } from '../api/schema.ts';
import { CodecError } from '../domain/codec.ts';
import { toEntry } from '../domain/eventCodec.ts';
import { DEFAULT_EVICTION_POLICY, type EvictionPolicy } from '../domain/eviction.ts';
import { fold, FoldError } from '../domain/fold.ts';
import type { LoggedEvent, MetadataState } from '../domain/types.ts';
import {
  NoRespondersError,
  TransportTimeoutError,
  type ApiClientTransport,
  type ApiListener,
  type ApiServerTransport,
} from '../ports/apiTransport.ts';
import type { Clock, TimerHandle } from '../ports/clock.ts';
import type { Elector, LeaderView, MemberRecord } from '../ports/elector.ts';
import {
  NotRetainedError,
  type LogFollower,
  type OpLog,
  type OpLogWriter,
} from '../ports/opLog.ts';
import { CommittedStore } from './committedStore.ts';
import { timeRequests, type RequestObserver } from './metrics.ts';
import { ReadLeases } from './readLeases.ts';
import { WritePipeline } from './writePipeline.ts';
import { AdminClient, adminHandler } from './adminApi.ts';
import { fetchFullSync, FullSyncSource } from './fullSync.ts';
import {
  corruptState,
  emptyVerificationStats,
  runVerificationRound,
  verifyOp,
  type CorruptionKind,
  type VerificationStats,
} from './verification.ts';

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
};

export interface NodeRuntimeDeps {
  readonly nodeId: string;
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
  /** Receives each API request's time to answer, by op (the node's `/metrics`). */
  readonly metrics?: RequestObserver;
  /** An XState inspection observer (`--inspect`): sees every actor, event and snapshot. */
  readonly inspect?: Observer<InspectionEvent>;
}

/** Why a planned switchover was refused or failed. */
export type SwitchoverFailure =
  'notPrimary' | 'targetIsSelf' | 'unknownTarget' | 'targetNotReady' | 'handoverFailed';

/** A planned switchover was refused (the node still serves) or failed while handing over. */
export class SwitchoverError extends Error {
  override readonly name = 'SwitchoverError';
  constructor(
    readonly reason: SwitchoverFailure,
    message: string,
    readonly target?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What a switchover did, as seen by the primary that handed over. */
export interface SwitchoverResult {
  readonly from: string;
  readonly target: string | undefined;
  /** The last entry written before resigning: the next primary's fence follows it. */
  readonly appliedSeq: number;
  /** The epoch that ended. */
  readonly epoch: number;
  /** From the request to the leader key's deletion (ms). */
  readonly tookMs: number;
}

/** One node's view of itself, for `status`, `/status` and tests. */
export interface NodeStatus {
  readonly nodeId: string;
  readonly role: NodeRole;
  /** This node's epoch when primary; otherwise the current leader's, 0 when unknown. */
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly logLastSeq: number;
  readonly leader: LeaderView | null;
  readonly lastFault: string | undefined;
  readonly promotions: number;
  readonly fences: number;
  /** Verification and full-sync counters (a copy). */
  readonly verification: VerificationStats;
}

export type MasterNodeActor = Actor<typeof masterNodeMachine>;

/** The role a machine snapshot stands for. */
export function roleOf(snapshot: SnapshotFrom<typeof masterNodeMachine>): NodeRole {
  if (snapshot.status === 'done') return 'stopped';
  if (snapshot.matches('starting') || snapshot.matches('startFailed')) return 'starting';
  if (snapshot.matches('stopping')) return 'stopping';
  if (snapshot.matches({ running: 'standby' })) return 'standby';
  if (snapshot.matches({ running: 'syncing' }) || snapshot.matches({ running: 'syncFailed' })) {
    return 'syncing';
  }
  if (snapshot.matches({ running: 'candidate' })) return 'candidate';
  if (snapshot.matches({ running: 'primary' }) || snapshot.matches({ running: 'handingOver' })) {
    return 'primary';
  }
  return 'fenced';
}

/**
 * A master node: the pure lifecycle machine wired to an OpLog, an Elector, an API transport
 * and a clock. The same runtime runs as a process over NATS and etcd, and in the simulation
 * over the memory adapters.
 */
export class NodeRuntime {
  readonly store = new CommittedStore();
  readonly actor: MasterNodeActor;
  readonly #config: NodeRuntimeConfig;
  readonly #leases: ReadLeases;
  #writer: OpLogWriter | undefined;
  #pipeline: WritePipeline | undefined;
  #memberTimer: TimerHandle | undefined;
  #role: NodeRole = 'starting';
  /** True only while a stop or switchover event is being sent (see #requestHandover). */
  #handoverRequested = false;
  #serving = false;
  readonly #stopped: Promise<void>;
  /** Verification and full-sync counters; `/status` shows them under `verification`. */
  readonly verificationStats: VerificationStats = emptyVerificationStats();
  #syncSource: FullSyncSource | undefined;

  constructor(private readonly deps: NodeRuntimeDeps) {
    this.#config = { ...DEFAULT_RUNTIME_CONFIG, ...deps.config };
    this.#leases = new ReadLeases(deps.clock, this.#config.leaseTtlMs);
    const machine = masterNodeMachine.provide({
      actors: {
        startNode: fromPromise(() => this.#startNode()),
        followLog: fromCallback<MasterNodeEvent, { fromSeq: number }>(({ sendBack }) =>
          this.#followLog(sendBack),
        ),
        watchLeader: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          deps.elector.observe((leader) => sendBack({ type: 'leader.changed', leader })),
        ),
        verify: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          this.#verify(sendBack),
        ),
        fullSync: fromPromise(() => this.#fullSync()),
        campaign: fromPromise(() => this.#campaign()),
        promote: fromPromise<
          { epoch: number; appliedSeq: number },
          { nodeId: string; epoch: number }
        >(({ input }) => this.#promote(input.epoch)),
        serve: fromCallback<MasterNodeEvent, { nodeId: string; epoch: number }>(
          ({ sendBack, input }) => this.#serve(input.epoch, sendBack),
        ),
        stepDown: fromPromise<{ appliedSeq: number }, { nodeId: string; reason: string }>(
          ({ input }) => this.#stepDown(input.reason),
        ),
        handOver: fromPromise<
          { appliedSeq: number },
          { nodeId: string; target: string | undefined; keepRunning: boolean }
        >(({ input }) => this.#handOver(input.target, input.keepRunning)),
        shutdown: fromPromise(() => this.#shutdown()),
      },
    });
    this.actor = createActor(machine, {
      // Named by node, so several nodes' actors can share one inspector (`n1/masterNode`).
      id: `${deps.nodeId}/masterNode`,
      ...(deps.inspect === undefined ? {} : { inspect: deps.inspect }),
      input: {
        nodeId: deps.nodeId,
        maxLagForPromotion: this.#config.maxLagForPromotion,
        campaignBaseDelayMs: this.#config.campaignBaseDelayMs,
        campaignDelayPerEntryMs: this.#config.campaignDelayPerEntryMs,
        campaignMaxDelayMs: this.#config.campaignMaxDelayMs,
        retryDelayMs: this.#config.retryDelayMs,
      },
      clock: {
        setTimeout: (fn: (...args: unknown[]) => void, ms: number) => deps.clock.setTimeout(fn, ms),
        clearTimeout: (handle: unknown) => (handle as TimerHandle).clear(),
      },
    });
    this.#stopped = new Promise((resolve) => {
      this.actor.subscribe({ complete: () => resolve(), error: () => resolve() });
    });
    this.actor.subscribe((snapshot) => {
      const role = roleOf(snapshot);
      if (role === this.#role) return;
      this.#role = role;
      deps.logger.info(
        {
          event: 'state',
          state: role,
          epoch: snapshot.context.epoch,
          appliedSeq: this.store.appliedSeq,
          fault: snapshot.context.lastFault,
        },
        `node ${deps.nodeId} is ${role}`,
      );
      this.#publishMember();
    });
  }

  /** Starts the machine. */
  start(): this {
    this.actor.start();
    return this;
  }

  /** Stops the node: a primary hands over first. Resolves when the machine has stopped. */
  async stop(): Promise<void> {
    this.#requestHandover({ type: 'node.stop' });
    await this.#stopped;
  }

  /**
   * Planned switchover: hands the primary role over (to `target` when named, once it is a
   * standby within `maxLagForPromotion`) without stopping this node, which then follows as a
   * standby. Resolves once the leader key is deleted. Rejects with {@link SwitchoverError}:
   * refused (`notPrimary`, `targetIsSelf`, `unknownTarget`, `targetNotReady`: still serving)
   * or `handoverFailed` (the node stepped down as if fenced).
   */
  async switchover(target?: string): Promise<SwitchoverResult> {
    const { clock, elector } = this.deps;
    const started = clock.now();
    if (!this.actor.getSnapshot().matches({ running: 'primary' })) {
      throw new SwitchoverError('notPrimary', `${this.deps.nodeId} is ${this.#role}, not primary`);
    }
    if (target === this.deps.nodeId) {
      throw new SwitchoverError('targetIsSelf', `${target} is already the primary`, target);
    }
    if (target !== undefined) {
      const members = await elector.members();
      if (!members.some((m) => m.nodeId === target)) {
        throw new SwitchoverError('unknownTarget', `no member ${target} is registered`, target);
      }
    }
    // Wait for the target (or any standby) while still serving: a refusal leaves this node primary.
    if (!(await this.#waitForStandby(target, () => this.store.appliedSeq))) {
      throw new SwitchoverError(
        'targetNotReady',
        `${target ?? 'no node'} is not a standby within ${this.#config.maxLagForPromotion} entries after ${this.#config.handoverTimeoutMs} ms`,
        target,
      );
    }
    const epoch = this.actor.getSnapshot().context.epoch;
    let unsubscribe = (): void => undefined;
    const done = new Promise<void>((resolve, reject) => {
      const sub = this.actor.subscribe((snapshot) => {
        if (snapshot.matches({ running: 'handingOver' })) return;
        sub.unsubscribe();
        if (snapshot.matches({ running: 'standby' })) resolve();
        else {
          const fault = snapshot.context.lastFault ?? 'unknown';
          reject(new SwitchoverError('handoverFailed', `handover failed: ${fault}`, target));
        }
      });
      unsubscribe = () => sub.unsubscribe();
    });
    this.#requestHandover(
      target === undefined ? { type: 'node.switchover' } : { type: 'node.switchover', target },
    );
    if (!this.actor.getSnapshot().matches({ running: 'handingOver' })) {
      unsubscribe();
      throw new SwitchoverError('notPrimary', `${this.deps.nodeId} is ${this.#role}, not primary`);
    }
    await done;
    return {
      from: this.deps.nodeId,
      target,
      appliedSeq: this.store.appliedSeq,
      epoch,
      tookMs: clock.now() - started,
    };
  }

  /** Sends a stop or switchover, marking it so the serve actor leaves its in-flight writes to #handOver. */
  #requestHandover(event: MasterNodeEvent): void {
    this.#handoverRequested = true;
    try {
      this.actor.send(event);
    } finally {
      this.#handoverRequested = false;
    }
  }

  /**
   * Polls until a standby (`target`, or any other node when undefined) is within
   * `maxLagForPromotion` of `seq()`, asking it through `probePeer` when there is one;
   * false after `handoverTimeoutMs`.
   */
  async #waitForStandby(target: string | undefined, seq: () => number): Promise<boolean> {
    const { elector, clock, probePeer } = this.deps;
    const deadline = clock.now() + this.#config.handoverTimeoutMs;
    const isReady = async (m: MemberRecord): Promise<boolean> => {
      if (m.nodeId === this.deps.nodeId || (target !== undefined && m.nodeId !== target)) {
        return false;
      }
      const seen =
        probePeer === undefined ? m : await probePeer(m).catch(() => ({ role: '', appliedSeq: 0 }));
      return seen.role === 'standby' && seq() - seen.appliedSeq <= this.#config.maxLagForPromotion;
    };
    while (clock.now() < deadline) {
      const members = await elector.members().catch(() => []);
      if (await anyOf(members.map(isReady))) return true;
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 20));
    }
    return false;
  }

  get role(): NodeRole {
    return this.#role;
  }

  /** True while this node is primary and its API listener is up. */
  get serving(): boolean {
    return this.#serving;
  }

  status(): NodeStatus {
    const { context } = this.actor.getSnapshot();
    return {
      nodeId: this.deps.nodeId,
      role: this.#role,
      epoch: this.#role === 'primary' ? context.epoch : (context.leader?.epoch ?? 0),
      appliedSeq: this.store.appliedSeq,
      logLastSeq: Math.max(context.logLastSeq, this.store.appliedSeq),
      leader: context.leader ?? null,
      lastFault: context.lastFault,
      promotions: context.promotions,
      fences: context.fences,
      verification: { ...this.verificationStats },
    };
  }

  async #startNode(): Promise<{ appliedSeq: number }> {
    await this.deps.elector.start();
    this.#scheduleMember();
    return { appliedSeq: this.store.appliedSeq };
  }

  #followLog(sendBack: (event: MasterNodeEvent) => void): () => void {
    const { opLog, clock, logger } = this.deps;
    let stopped = false;
    let follower: LogFollower | undefined;
    let logLastSeq = 0;
    let timer: TimerHandle | undefined;
    const report = (): void => {
      sendBack({ type: 'oplog.progress', appliedSeq: this.store.appliedSeq, logLastSeq });
    };
    const tick = (): void => {
      if (stopped) return;
      opLog.bounds().then(
        (bounds) => {
          logLastSeq = Math.max(logLastSeq, bounds.lastSeq);
          if (!stopped) report();
        },
        () => undefined,
      );
      timer = clock.setTimeout(tick, this.#config.progressIntervalMs);
    };
    const wait = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        timer = clock.setTimeout(resolve, ms);
      });
    const run = async (): Promise<void> => {
      while (!stopped) {
        try {
          follower = opLog.follow(this.store.appliedSeq + 1);
          for await (const batch of follower) {
            if (stopped) return;
            this.store.applyEntries(batch.entries, batch.streamSeq);
            logLastSeq = Math.max(logLastSeq, this.store.appliedSeq);
          }
        } catch (err) {
          if (stopped) return;
          if (
            err instanceof NotRetainedError ||
            err instanceof CodecError ||
            err instanceof FoldError
          ) {
            logger.warn({ event: 'needsSync', err: String(err) }, 'the log cannot be followed');
            sendBack({ type: 'oplog.needsSync', reason: String(err) });
            return;
          }
          logger.warn({ event: 'followRetry', err: String(err) }, 'following failed; retrying');
        }
        if (!stopped) await wait(this.#config.retryDelayMs);
      }
    };
    tick();
    void run();
    return () => {
      stopped = true;
      timer?.clear();
      follower?.close();
    };
  }

  /** Standby verification: a round every `verifyIntervalMs`, repairs in place. */
  #verify(sendBack: (event: MasterNodeEvent) => void): () => void {
    const admin = this.deps.admin;
    if (admin === undefined) return () => undefined;
    const { clock, logger } = this.deps;
    const client = new AdminClient(admin.client, this.#config.adminTimeoutMs);
    const stats = this.verificationStats;
    let stopped = false;
    let timer: TimerHandle | undefined;
    let round = stats.rounds + stats.failedRounds;
    const runRound = async (): Promise<void> => {
      const state = this.store.state;
      const outcome = await runVerificationRound(client, state, () => this.store.state, round, {
        fraction: this.#config.verifyFraction,
        maxKeysPerShard: this.#config.verifyMaxKeysPerShard,
      });
      round++;
      if (stopped) return;
      stats.rounds++;
      stats.keysChecked += outcome.keysChecked;
      stats.mismatches += outcome.mismatches;
      stats.lastStatus = outcome.status;
      stats.lastRoundAt = clock.now();
      // The follower may have folded more entries since the repair was computed: a repair of an
      // older state is dropped (the next round finds the mismatch again) rather than undoing them.
      if (outcome.repaired !== undefined && outcome.repaired.appliedSeq === this.store.appliedSeq) {
        this.store.reset(outcome.repaired, this.store.lastStreamSeq);
        stats.repairs++;
      }
      if (outcome.status !== 'OK') {
        logger.warn(
          {
            event: 'verifyMismatch',
            status: outcome.status,
            mismatches: outcome.mismatches,
            repaired: outcome.repaired !== undefined,
            needsFullSync: outcome.needsFullSync,
            forSeq: state.appliedSeq,
            detail: outcome.detail,
          },
          outcome.needsFullSync
            ? 'verification: the state needs a full sync'
            : `verification: repaired ${outcome.mismatches} mismatches`,
        );
      }
      if (outcome.needsFullSync) stats.fullSyncRequests++;
      sendBack({
        type: 'verify.done',
        healthy: !outcome.needsFullSync,
        needsFullSync: outcome.needsFullSync,
      });
    };
    const tick = (): void => {
      if (stopped) return;
      runRound().then(
        () => schedule(),
        (err: unknown) => {
          round++;
          stats.failedRounds++;
          stats.lastStatus = 'FAILED';
          logger.warn({ event: 'verifyFailed', err: String(err) }, 'verification round failed');
          schedule();
        },
      );
    };
    const schedule = (): void => {
      if (!stopped) timer = clock.setTimeout(tick, this.#config.verifyIntervalMs);
    };
    schedule();
    return () => {
      stopped = true;
      timer?.clear();
    };
  }

  /**
   * TEST ONLY (reached through the test-hooks HTTP endpoint): corrupts one record of the
   * committed state in memory, as a fault would, to prove verification finds and repairs it.
   */
  corruptForTest(key: string, kind: CorruptionKind): void {
    this.store.reset(corruptState(this.store.state, key, kind), this.store.lastStreamSeq);
    this.deps.logger.warn({ event: 'corrupted', key, kind }, 'test hook corrupted the state');
  }

  /** The primary's admin listener (verification answers, full-sync chunks); returns its closer. */
  #listenAdmin(): () => void {
    const admin = this.deps.admin;
    if (admin === undefined) return () => undefined;
    const { clock, logger } = this.deps;
    const committed = (): { state: MetadataState; lastStreamSeq: number } => ({
      state: this.store.state,
      lastStreamSeq: this.store.lastStreamSeq,
    });
    const source = new FullSyncSource({
      committed,
      clock,
      ...(admin.maxReplyBytes === undefined ? {} : { maxPartBytes: admin.maxReplyBytes }),
    });
    this.#syncSource = source;
    const handler = adminHandler({
      verify: verifyOp({
        committed: () => this.store.state,
        maxGap: this.#config.maxSyncGap,
        maxMismatches: this.#config.maxMismatches,
        onAnswer: (request, response) => {
          this.verificationStats.answered++;
          if (response.status !== 'OK') {
            logger.warn(
              { event: 'verifyAnswer', status: response.status, forSeq: request.appliedSeq },
              `a standby's verification round: ${response.status}`,
            );
          }
        },
      }),
      ...source.ops(),
    });
    let closed = false;
    let listener: ApiListener | undefined;
    admin.server.listen(handler).then(
      (l) => {
        if (closed) void l.close();
        else listener = l;
      },
      (err: unknown) => logger.warn({ event: 'adminListenFailed', err: String(err) }, 'no admin'),
    );
    return () => {
      closed = true;
      source.clear();
      if (this.#syncSource === source) this.#syncSource = undefined;
      void listener?.close();
    };
  }

  async #fullSync(): Promise<{ appliedSeq: number }> {
    const { admin, clock, logger } = this.deps;
    if (admin !== undefined) {
      const started = clock.now();
      try {
        const result = await fetchFullSync(
          new AdminClient(admin.client, this.#config.adminTimeoutMs),
        );
        this.store.reset(result.state, result.lastStreamSeq);
        const stats = this.verificationStats;
        stats.fullSyncs++;
        stats.lastFullSyncMs = clock.now() - started;
        stats.lastFullSyncBytes = result.bytes;
        logger.info(
          {
            event: 'fullSynced',
            appliedSeq: result.state.appliedSeq,
            objects: result.state.objectCount,
            chunks: result.chunks,
            bytes: result.bytes,
            tookMs: stats.lastFullSyncMs,
          },
          `full sync done at seq ${result.state.appliedSeq}`,
        );
        return { appliedSeq: this.store.appliedSeq };
      } catch (err) {
        // No primary to sync from: re-folding the log works when it still starts at entry 1.
        if (!(err instanceof NoRespondersError || err instanceof TransportTimeoutError)) throw err;
        logger.warn({ event: 'fullSyncNoPrimary', err: String(err) }, 'no primary to sync from');
      }
    }
    // No primary (or no admin channel): re-fold the log from its first entry; this fails (and
    // is retried) when the stream was trimmed.
    const bounds = await this.deps.opLog.bounds();
    if (bounds.firstSeq > 1) {
      throw new Error(
        `the stream starts at ${bounds.firstSeq}; full sync from a primary is needed`,
      );
    }
    this.store.reset();
    return { appliedSeq: 0 };
  }

  async #campaign(): ReturnType<Elector['campaign']> {
    const { elector, clock } = this.deps;
    if (clock.now() >= elector.leaseDeadline()) await elector.start();
    return elector.campaign({ nodeId: this.deps.nodeId, address: this.deps.address });
  }

  async #promote(epoch: number): Promise<{ epoch: number; appliedSeq: number }> {
    const { opLog, elector, clock, logger } = this.deps;
    const bounds = await opLog.bounds();
    if (bounds.lastSeq > this.store.appliedSeq) {
      const follower = opLog.follow(this.store.appliedSeq + 1);
      try {
        for await (const batch of follower) {
          this.store.applyEntries(batch.entries, batch.streamSeq);
          if (this.store.appliedSeq >= bounds.lastSeq) break;
        }
      } finally {
        follower.close();
      }
    }
    if (clock.now() >= elector.leaseDeadline())
      throw new Error('lease deadline passed while draining');
    const writer = opLog.openWriter({ expectedLastStreamSeq: this.store.lastStreamSeq });
    this.#writer = writer;
    const logged: LoggedEvent = {
      seq: this.store.appliedSeq + 1,
      epoch,
      ts: clock.now(),
      event: { op: 'EPOCH', epoch, nodeId: this.deps.nodeId },
    };
    const next = fold(this.store.state, logged);
    const ack = await writer.append([toEntry(logged)]);
    this.store.commit(next, ack.streamSeq);
    this.#leases.leaseAll();
    logger.info({ event: 'fenceWritten', epoch, seq: logged.seq }, 'EPOCH fence appended');
    return { epoch, appliedSeq: this.store.appliedSeq };
  }

  #serve(epoch: number, sendBack: (event: MasterNodeEvent) => void): () => void {
    const { elector, clock, apiServer, logger } = this.deps;
    const writer = this.#writer;
    if (writer === undefined) throw new Error('serve without a writer');
    let stopped = false;
    let listener: ApiListener | undefined;
    let deadlineTimer: TimerHandle | undefined;
    let progressTimer: TimerHandle | undefined;
    const fault = (type: 'oplog.fenced' | 'lease.lost', reason: string): void => {
      if (!stopped) sendBack({ type, reason });
    };
    const pipeline = new WritePipeline({
      nodeId: this.deps.nodeId,
      epoch,
      store: this.store,
      writer,
      leaseDeadline: () => elector.leaseDeadline(),
      clock,
      leases: this.#leases,
      eviction: this.#config.eviction,
      evictionIntervalMs: this.#config.evictionIntervalMs,
      onFault: (reason) =>
        fault(reason.startsWith('lease') ? 'lease.lost' : 'oplog.fenced', reason),
    });
    this.#pipeline = pipeline;
    const unLease = elector.onLeaseLost((reason) => fault('lease.lost', reason));
    const armDeadline = (): void => {
      const wait = Math.max(1, elector.leaseDeadline() - clock.now());
      deadlineTimer = clock.setTimeout(() => {
        if (stopped) return;
        if (clock.now() >= elector.leaseDeadline()) fault('lease.lost', 'lease deadline passed');
        else armDeadline();
      }, wait);
    };
    armDeadline();
    const progress = (): void => {
      sendBack({
        type: 'oplog.progress',
        appliedSeq: this.store.appliedSeq,
        logLastSeq: this.store.appliedSeq,
      });
      progressTimer = clock.setTimeout(progress, this.#config.progressIntervalMs);
    };
    progressTimer = clock.setTimeout(progress, this.#config.progressIntervalMs);
    const closeAdmin = this.#listenAdmin();
    const handler = createApiHandler(pipeline);
    const metrics = this.deps.metrics;
    apiServer.listen(metrics ? timeRequests(handler, metrics, API_OPS) : handler).then(
      (l) => {
        if (stopped) void l.close();
        else {
          listener = l;
          this.#serving = true;
          logger.info({ event: 'serving', epoch }, 'serving clients');
        }
      },
      (err: unknown) => fault('oplog.fenced', `cannot listen: ${String(err)}`),
    );
    return () => {
      stopped = true;
      this.#serving = false;
      unLease();
      deadlineTimer?.clear();
      progressTimer?.clear();
      // A requested handover (stop, switchover) lets what is in flight commit and be answered:
      // #handOver drains the pipeline, then closes it. Any other exit fails it now.
      if (!this.#handoverRequested) pipeline.close('not primary');
      void listener?.close();
      closeAdmin();
    };
  }

  async #stepDown(reason: string): Promise<{ appliedSeq: number }> {
    const { elector, logger } = this.deps;
    this.#pipeline?.close(reason);
    this.#pipeline = undefined;
    await this.#writer?.close();
    this.#writer = undefined;
    this.#leases.clear();
    logger.warn({ event: 'fenced', reason, appliedSeq: this.store.appliedSeq }, 'stepped down');
    // The leader key may still be ours (a missed deadline with a live lease): give it up so
    // another node can take over without waiting for the TTL. Even when etcd cannot be reached
    // the resign stops the keep-alives, so the lease and the key expire within one TTL; a
    // standby takes a new lease when it needs one.
    await elector.resign().catch((err: unknown) => {
      logger.warn({ event: 'resignFailed', err: String(err) }, 'the lease is left to expire');
    });
    return { appliedSeq: this.store.appliedSeq };
  }

  async #handOver(
    handoverTo: string | undefined,
    keepRunning: boolean,
  ): Promise<{ appliedSeq: number }> {
    const { elector, clock, logger } = this.deps;
    const started = clock.now();
    await this.#pipeline?.drain();
    const drained = clock.now();
    const target = this.store.appliedSeq;
    await this.#waitForStandby(handoverTo, () => target);
    const standbyReady = clock.now();
    this.#pipeline?.close('handed over');
    this.#pipeline = undefined;
    await this.#writer?.close();
    this.#writer = undefined;
    await elector.resign(handoverTo === undefined ? {} : { handoverTo });
    const resigned = clock.now();
    logger.info(
      {
        event: 'handedOver',
        appliedSeq: target,
        handoverTo,
        tookMs: resigned - started,
        // Where the time went: writes in flight, a caught-up standby, closing and resigning.
        drainMs: drained - started,
        standbyWaitMs: standbyReady - drained,
        resignMs: resigned - standbyReady,
      },
      'resigned the leader key',
    );
    // A switchover goes on as a standby: it needs a lease for its member record and campaigns.
    if (keepRunning && this.actor.getSnapshot().context.switchover !== undefined) {
      this.#leases.clear();
      await elector.start().catch((err: unknown) => {
        logger.warn({ event: 'leaseRegrant', err: String(err) }, 'no new lease after handover');
      });
    }
    return { appliedSeq: target };
  }

  async #shutdown(): Promise<void> {
    this.#memberTimer?.clear();
    this.#memberTimer = undefined;
    await this.deps.elector.close();
  }

  #scheduleMember(): void {
    this.#memberTimer = this.deps.clock.setTimeout(() => {
      this.#publishMember();
      this.#scheduleMember();
    }, this.#config.memberIntervalMs);
  }

  #publishMember(): void {
    if (this.#role === 'starting' || this.#role === 'stopped' || this.#role === 'stopping') return;
    const { context } = this.actor.getSnapshot();
    const { elector, clock } = this.deps;
    // A standby whose lease lapsed (etcd was unreachable) takes a new one to stay registered.
    const leased =
      this.#role === 'standby' && clock.now() >= elector.leaseDeadline()
        ? elector.start()
        : Promise.resolve();
    leased
      .then(() =>
        elector.publishMember({
          nodeId: this.deps.nodeId,
          role: this.#role,
          epoch: this.#role === 'primary' ? context.epoch : (context.leader?.epoch ?? 0),
          appliedSeq: this.store.appliedSeq,
          address: this.deps.address,
          updatedAt: clock.now(),
        }),
      )
      .catch(() => undefined);
  }
}

/**
 * True as soon as one of `checks` resolves true; false once all have resolved false or failed.
 * A slow check (a peer that does not answer its probe) does not hold up a ready one.
 */
function anyOf(checks: readonly Promise<boolean>[]): Promise<boolean> {
  return new Promise((resolve) => {
    let left = checks.length;
    if (left === 0) resolve(false);
    const settle = (ok: boolean): void => {
      if (ok) resolve(true);
      else if (--left === 0) resolve(false);
    };
    for (const check of checks) check.then(settle, () => settle(false));
  });
}
