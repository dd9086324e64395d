import { createActor, fromCallback, fromPromise } from 'xstate';
import {
  masterNodeMachine,
  type MasterNodeEvent,
  type NodeRole,
} from '../../machines/masterNode.machine.ts';
import type { TimerHandle } from '../ports/clock.ts';
import { checkpointSchedule, Checkpointer } from './checkpoints/checkpointer.ts';
import { emptyCheckpointStats, type CheckpointStats } from './checkpoints/checkpointStats.ts';
import { FailClosedError, restoreWithoutPrimary } from './checkpoints/restoreWithoutPrimary.ts';
import { CommittedStore } from './state/committedStore.ts';
import { followLog } from './actors/followLog.ts';
import { listenAdmin } from './actors/listenAdmin.ts';
import { MemberPublisher } from './actors/memberPublisher.ts';
import {
  DEFAULT_RUNTIME_CONFIG,
  type NodeRuntimeConfig,
  type NodeRuntimeDeps,
} from './nodeRuntimeConfig.ts';
import { nodeStatus, roleOf, type MasterNodeActor, type NodeStatus } from './nodeStatus.ts';
import { PrimaryTerm } from './state/primaryTerm.ts';
import { campaign, promote, watchLease } from './actors/promote.ts';
import { ElectionChecks } from './state/electionChecks.ts';
import { ReadLeases } from './state/readLeases.ts';
import { failingClosed, runFullSync, syncFromPrimary } from './actors/runFullSync.ts';
import { DuplicateNodeIdError, startNode } from './actors/startNode.ts';
import type { OplogKeyMismatchError } from './oplogKeyCheck.ts';
import { OtherKeyWatch } from './otherKeyWatch.ts';
import { serve } from './actors/serve.ts';
import { handOver, stepDown } from './actors/stepDown.ts';
import { switchover, type SwitchoverResult } from './actors/switchover.ts';
import {
  corruptState,
  emptyVerificationStats,
  type CorruptionKind,
  type VerificationStats,
} from '../admin/verification.ts';
import { verifyStandby } from './actors/verifyStandby.ts';
import { Waiting } from './waitingFor.ts';
import { checkStreamTail } from './streamTail.ts';

export {
  DEFAULT_RUNTIME_CONFIG,
  type NodeRuntimeConfig,
  type NodeRuntimeDeps,
  type RuntimeLogger,
} from './nodeRuntimeConfig.ts';
export { roleOf, type MasterNodeActor, type NodeStatus } from './nodeStatus.ts';
export {
  SwitchoverError,
  type SwitchoverFailure,
  type SwitchoverResult,
} from './actors/switchover.ts';

/**
 * A master node: the pure lifecycle machine wired to an OpLog, an Elector, an API transport
 * and a clock. The same runtime runs as a process over NATS and etcd, and in the simulation
 * over the memory adapters. Each actor lives in its own module; this class provides them to
 * the machine and holds what they share.
 */
export class NodeRuntime {
  readonly store = new CommittedStore();
  readonly actor: MasterNodeActor;
  readonly #config: NodeRuntimeConfig;
  readonly #leases: ReadLeases;
  /** The writer and pipeline of the current term as primary; the handover flag. */
  readonly #term = new PrimaryTerm();
  readonly #members: MemberPublisher;
  #role: NodeRole = 'starting';
  readonly #stopped: Promise<void>;
  /** What the node waits for while it starts (`/status`). */
  readonly #waiting = new Waiting();
  /** Why the node refused to start, or stopped because it cannot serve. */
  #refusal: DuplicateNodeIdError | OplogKeyMismatchError | undefined;
  /** Verification and full-sync counters; `/status` shows them under `verification`. */
  readonly verificationStats: VerificationStats = emptyVerificationStats();
  /** Checkpoint counters and the fail-closed reason; `/status` shows them under `checkpoints`. */
  readonly checkpointStats: CheckpointStats = emptyCheckpointStats();
  /** Writes checkpoints when this node is the writer; undefined without a checkpoint store. */
  readonly checkpointer: Checkpointer | undefined;
  #started = false;

  constructor(private readonly deps: NodeRuntimeDeps) {
    const config: NodeRuntimeConfig = { ...DEFAULT_RUNTIME_CONFIG, ...deps.config };
    this.#config = config;
    this.#leases = new ReadLeases(deps.clock, config.leaseTtlMs);
    const { store, verificationStats: stats } = this;
    const leases = this.#leases;
    const term = this.#term;
    const checks = new ElectionChecks(deps, config.retryDelayMs);
    const checkpointStats = this.checkpointStats;
    const keyWatch = new OtherKeyWatch(deps, (err) => this.#refuse(err));
    // A node that failed closed publishes its member record, so `status` lists it and says why.
    this.#members = new MemberPublisher(
      deps,
      config,
      store,
      () => (checkpointStats.failClosed !== undefined ? 'failedClosed' : this.#role),
      () => this.actor.getSnapshot().context,
    );
    this.checkpointer =
      deps.checkpoints === undefined
        ? undefined
        : new Checkpointer({
            nodeId: deps.nodeId,
            store: deps.checkpoints,
            committed: store,
            opLog: deps.opLog,
            clock: deps.clock,
            logger: deps.logger,
            schedule: checkpointSchedule(config),
            stats: checkpointStats,
            role: () => this.#role,
            healthy: () => this.actor.getSnapshot().context.verificationHealthy,
            logLastSeq: () => this.actor.getSnapshot().context.logLastSeq,
            members: () => deps.elector.members(),
            maxLagForPromotion: config.maxLagForPromotion,
            memberStaleMs: 3 * config.memberIntervalMs,
          });
    const machine = masterNodeMachine.provide({
      actors: {
        startNode: fromPromise(({ signal }) => this.#startNode(signal)),
        followLog: fromCallback<MasterNodeEvent, { fromSeq: number }>(({ sendBack }) =>
          followLog(deps, config, store, checks, sendBack, (batch) => keyWatch.passedOver(batch)),
        ),
        watchLeader: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          deps.elector.observe((leader) => sendBack({ type: 'leader.changed', leader })),
        ),
        verify: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          verifyStandby(deps, config, store, stats, sendBack),
        ),
        fullSync: fromPromise(({ signal }) =>
          runFullSync(deps, config, store, stats, checkpointStats, signal),
        ),
        campaign: fromPromise(({ signal }) => campaign(deps, signal)),
        promote: fromPromise<
          { epoch: number; appliedSeq: number },
          { nodeId: string; epoch: number }
        >(async ({ input, signal }) => {
          await keyWatch.beforePromotion();
          return promote(deps, config, store, checks, leases, term, input.epoch, signal);
        }),
        watchLease: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          watchLease(deps, sendBack),
        ),
        serve: fromCallback<MasterNodeEvent, { nodeId: string; epoch: number }>(
          ({ sendBack, input }) =>
            serve(
              deps,
              config,
              store,
              leases,
              term,
              () => listenAdmin(deps, config, store, stats),
              input.epoch,
              sendBack,
            ),
        ),
        stepDown: fromPromise<{ appliedSeq: number }, { nodeId: string; reason: string }>(
          ({ input }) => stepDown(deps, store, leases, term, input.reason),
        ),
        handOver: fromPromise<
          { appliedSeq: number },
          { nodeId: string; target: string | undefined; keepRunning: boolean }
        >(({ input, signal }) =>
          handOver(
            deps,
            config,
            store,
            leases,
            term,
            () => this.actor.getSnapshot().context.switchover !== undefined,
            input.target,
            input.keepRunning,
            signal,
          ),
        ),
        shutdown: fromPromise(() => this.#shutdown()),
      },
    });
    this.actor = createActor(machine, {
      // Named by node, so several nodes' actors can share one inspector (`n1/masterNode`).
      id: `${deps.nodeId}/masterNode`,
      ...(deps.inspect === undefined ? {} : { inspect: deps.inspect }),
      input: {
        nodeId: deps.nodeId,
        maxLagForPromotion: config.maxLagForPromotion,
        campaignBaseDelayMs: config.campaignBaseDelayMs,
        campaignDelayPerEntryMs: config.campaignDelayPerEntryMs,
        campaignMaxDelayMs: config.campaignMaxDelayMs,
        retryDelayMs: config.retryDelayMs,
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
      this.#members.publish();
    });
  }

  /** Starts the machine. */
  start(): this {
    this.actor.start();
    return this;
  }

  /** Resolves once the machine has stopped (after {@link stop}, or when the node refused to start). */
  whenStopped(): Promise<void> {
    return this.#stopped;
  }

  /**
   * Why the node refused to start (another process runs with its id), or stopped because it
   * cannot serve (its OpLog key is no longer the cluster's), if it did.
   */
  get refusal(): DuplicateNodeIdError | OplogKeyMismatchError | undefined {
    return this.#refusal;
  }

  /**
   * Stops a node that cannot serve: one log line and `/status` (`refused`) say why. A node
   * whose OpLog key is no longer the cluster's can read none of the primary's messages.
   */
  #refuse(err: OplogKeyMismatchError): void {
    if (this.#refusal !== undefined) return;
    this.#refusal = err;
    this.deps.logger.error(
      {
        event: 'refused',
        reason: 'oplogKeyMismatch',
        keyId: err.nodeKeyId,
        clusterKeyId: err.clusterKeyId,
      },
      `stopping: ${err.message}`,
    );
    void this.stop();
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
  switchover(target?: string): Promise<SwitchoverResult> {
    return switchover(
      this.deps,
      this.#config,
      this.store,
      this.actor,
      () => this.#role,
      (event) => this.#requestHandover(event),
      target,
    );
  }

  /** Sends a stop or switchover, marking it so the serve actor leaves its in-flight writes to handOver. */
  #requestHandover(event: MasterNodeEvent): void {
    this.#term.handoverRequested = true;
    try {
      this.actor.send(event);
    } finally {
      this.#term.handoverRequested = false;
    }
  }

  get role(): NodeRole {
    return this.#role;
  }

  /** True while this node is primary and its API listener is up. */
  get serving(): boolean {
    return this.#term.serving;
  }

  status(): NodeStatus {
    const { context } = this.actor.getSnapshot();
    return nodeStatus(
      this.deps.nodeId,
      this.#role,
      context,
      this.store.appliedSeq,
      { skipped: this.store.skippedMessages, foreign: this.store.foreignEntries },
      this.verificationStats,
      this.#waiting.current,
      this.checkpointStats,
      this.#refusal?.message,
    );
  }

  /**
   * TEST ONLY (reached through the test-hooks HTTP endpoint): corrupts one record of the
   * committed state in memory, as a fault would, to prove verification finds and repairs it.
   */
  corruptForTest(key: string, kind: CorruptionKind): void {
    this.store.reset(corruptState(this.store.state, key, kind), this.store.lastStreamSeq);
    this.deps.logger.warn({ event: 'corrupted', key, kind }, 'test hook corrupted the state');
  }

  async #startNode(signal: AbortSignal): Promise<{ appliedSeq: number }> {
    try {
      await startNode(this.deps, this.#config, this.#members, this.#waiting, signal);
    } catch (err) {
      if (err instanceof DuplicateNodeIdError) this.#refusal = err;
      throw err;
    }
    // Cancelled (stopped while starting): the shutdown closes the elector; nothing is scheduled.
    signal.throwIfAborted();
    if (!this.#started) {
      this.#started = true;
      this.#members.schedule();
    }
    await this.#coldStart();
    signal.throwIfAborted();
    this.checkpointer?.start();
    return { appliedSeq: this.store.appliedSeq };
  }

  /**
   * Cold start: the newest valid checkpoint the stream continues, else the whole stream from
   * entry 1, else a primary's full sync; with none of them the node fails closed (the machine
   * retries the start) instead of coming up with a partial or empty state. First of all, a
   * checkpoint past the stream's end (the stream lost acknowledged entries) fails it closed,
   * whatever else could be found: no older state is served in its place.
   */
  async #coldStart(): Promise<void> {
    const { deps, store } = this;
    await failingClosed(deps, this.checkpointStats, async () => {
      await checkStreamTail(deps);
      try {
        await restoreWithoutPrimary(deps, store, this.checkpointStats);
      } catch (err) {
        if (!(err instanceof FailClosedError)) throw err;
        if (!(await syncFromPrimary(deps, this.#config, store, this.verificationStats)))
          throw new FailClosedError(`${err.reason}, and no primary answered a full sync`);
      }
    });
  }

  async #shutdown(): Promise<void> {
    await this.checkpointer?.stop();
    this.#members.stop();
    await this.deps.elector.close();
  }
}
