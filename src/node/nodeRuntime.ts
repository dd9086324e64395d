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
import type { LogState } from '../domain/decider.ts';
import type { MetadataState } from '../domain/model/types.ts';
import { metadataNodeDomain } from './metadataDomain.ts';
import { followLog } from './actors/followLog.ts';
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
import { NodeLease } from './state/nodeLease.ts';
import { failingClosed, runFullSync, syncFromPrimary } from './actors/runFullSync.ts';
import { DuplicateNodeIdError, startNode } from './actors/startNode.ts';
import type { OplogKeyMismatchError } from './oplogKeyCheck.ts';
import { OtherKeyWatch } from './otherKeyWatch.ts';
import { serve } from './actors/serve.ts';
import { handOver, stepDown } from './actors/stepDown.ts';
import { switchover, type SwitchoverResult } from './actors/switchover.ts';
import { emptyVerificationStats, type VerificationStats } from '../admin/verification.ts';
import { verifyStandby } from './actors/verifyStandby.ts';
import { Waiting } from './waitingFor.ts';
import type { NodeContext, NodeMachine } from './nodeContext.ts';
import { checkStreamTail, StreamTailLostError } from './streamTail.ts';

/** How long a stopping node waits to give its lease back before it leaves it to expire (ms). */
const RELEASE_NODE_ID_MS = 1000;

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
 * the machine and holds what they share. It runs any domain (`deps.domain`, the metadata by
 * default): `S` is that domain's state.
 */
export class NodeRuntime<S extends LogState = MetadataState> {
  readonly actor: MasterNodeActor;
  /** The node's collaborators, built once and handed to every actor (`{ input, signal, ctx }`). */
  readonly #ctx: NodeContext;
  #role: NodeRole = 'starting';
  readonly #stopped: Promise<void>;
  /** Why the node refused to start, or stopped because it cannot serve. */
  #refusal: DuplicateNodeIdError | OplogKeyMismatchError | undefined;
  /** Writes checkpoints when this node is the writer; undefined without a checkpoint store. */
  readonly checkpointer: Checkpointer | undefined;
  #started = false;
  /** The cold start's reading, begun while the node claims its id (see {@link #startNode}). */
  #restoring: Promise<Error | undefined> | undefined;

  constructor(private readonly deps: NodeRuntimeDeps) {
    const config: NodeRuntimeConfig = { ...DEFAULT_RUNTIME_CONFIG, ...deps.config };
    const { config: _partial, inspect: _inspect, domain: _domain, ...ports } = deps;
    const domain = deps.domain ?? metadataNodeDomain(config.eviction);
    const checkpointStats = emptyCheckpointStats();
    const machine: NodeMachine = {
      actor: () => this.actor,
      context: () => this.actor.getSnapshot().context,
      role: () => this.#role,
      // A node that failed closed publishes its member record, so `status` lists it and says why.
      memberRole: () => (checkpointStats.failClosed !== undefined ? 'failedClosed' : this.#role),
      requestHandover: (event) => this.#requestHandover(event),
    };
    const base = {
      ...ports,
      config,
      domain,
      store: new CommittedStore(domain),
      lease: new NodeLease(deps.elector, deps.clock),
      term: new PrimaryTerm(),
      leases: new ReadLeases<LogState>(deps.clock, config.leaseTtlMs, (state, key) =>
        domain.service.holds(state, key),
      ),
      checks: new ElectionChecks(deps, config.retryDelayMs, domain.log),
      verificationStats: emptyVerificationStats(),
      checkpointStats,
      waiting: new Waiting(),
      keyWatch: new OtherKeyWatch(deps, (err) => this.#refuse(err)),
      machine,
    };
    const ctx: NodeContext = { ...base, members: new MemberPublisher(base) };
    this.#ctx = ctx;
    const { store } = ctx;
    this.checkpointer =
      deps.checkpoints === undefined || domain.replication === undefined
        ? undefined
        : new Checkpointer({
            nodeId: deps.nodeId,
            store: deps.checkpoints,
            committed: store,
            replication: domain.replication,
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
    const machineWithActors = masterNodeMachine.provide({
      actors: {
        startNode: fromPromise(({ signal }) => this.#startNode(signal)),
        followLog: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          followLog({ ctx, sendBack }),
        ),
        watchLeader: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          deps.elector.observe((leader) => sendBack({ type: 'leader.changed', leader })),
        ),
        verify: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          verifyStandby({ ctx, sendBack }),
        ),
        fullSync: fromPromise(({ signal }) => runFullSync({ signal, ctx })),
        campaign: fromPromise(({ signal }) => campaign({ signal, ctx })),
        promote: fromPromise<
          { epoch: number; appliedSeq: number },
          { nodeId: string; epoch: number }
        >(async ({ input, signal }) => {
          await ctx.keyWatch.beforePromotion();
          return promote({ input, signal, ctx });
        }),
        watchLease: fromCallback<MasterNodeEvent, { nodeId: string }>(({ sendBack }) =>
          watchLease({ ctx, sendBack }),
        ),
        serve: fromCallback<MasterNodeEvent, { nodeId: string; epoch: number }>(
          ({ sendBack, input }) => serve({ input, ctx, sendBack }),
        ),
        stepDown: fromPromise<{ appliedSeq: number }, { nodeId: string; reason: string }>(
          ({ input }) => stepDown({ input, ctx }),
        ),
        handOver: fromPromise<
          { appliedSeq: number },
          { nodeId: string; target: string | undefined; keepRunning: boolean }
        >(({ input, signal }) => handOver({ input, signal, ctx })),
        shutdown: fromPromise(() => this.#shutdown()),
      },
    });
    this.actor = createActor(machineWithActors, {
      // Named by node, so several nodes' actors can share one inspector (`n1/masterNode`).
      id: `${deps.inspectName ?? deps.nodeId}/masterNode`,
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
          appliedSeq: store.appliedSeq,
          fault: snapshot.context.lastFault,
        },
        `node ${deps.nodeId} is ${role}`,
      );
      ctx.members.publish();
    });
  }

  /** The committed state: the one owner of this node's `appliedSeq`. */
  get store(): CommittedStore<S> {
    // The context holds it as the node's parts read it (LogState); its state is the domain's S.
    return this.#ctx.store as unknown as CommittedStore<S>;
  }

  /** Verification and full-sync counters; `/status` shows them under `verification`. */
  get verificationStats(): VerificationStats {
    return this.#ctx.verificationStats;
  }

  /** Checkpoint counters and the fail-closed reason; `/status` shows them under `checkpoints`. */
  get checkpointStats(): CheckpointStats {
    return this.#ctx.checkpointStats;
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
    return switchover({ input: { target }, ctx: this.#ctx });
  }

  /** Sends a stop or switchover, marking it so the serve actor leaves its in-flight writes to handOver. */
  #requestHandover(event: MasterNodeEvent): void {
    const { term } = this.#ctx;
    term.handoverRequested = true;
    try {
      this.actor.send(event);
    } finally {
      term.handoverRequested = false;
    }
  }

  get role(): NodeRole {
    return this.#role;
  }

  /** True while this node is primary and its API listener is up. */
  get serving(): boolean {
    return this.#ctx.term.serving;
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
      this.#ctx.waiting.current,
      this.checkpointStats,
      this.#refusal?.message,
    );
  }

  async #startNode(signal: AbortSignal): Promise<{ appliedSeq: number }> {
    // The reading part of the cold start needs no id, so it runs while the id is claimed: a
    // restart after kill -9 waits up to 2 TTL + 1 s for the dead process's lease, and loading
    // a 1M-object checkpoint takes seconds. A start retried while it runs takes it over.
    this.#restoring ??= this.#restoreLocally();
    try {
      await startNode({ signal, ctx: this.#ctx });
    } catch (err) {
      if (err instanceof DuplicateNodeIdError) this.#refusal = err;
      throw err;
    }
    // Cancelled (stopped while starting): the shutdown closes the elector; nothing is scheduled.
    signal.throwIfAborted();
    if (!this.#started) {
      this.#started = true;
      this.#ctx.members.schedule();
    }
    const failed = await this.#restoring;
    this.#restoring = undefined;
    await this.#coldStart(failed);
    signal.throwIfAborted();
    this.checkpointer?.start();
    return { appliedSeq: this.store.appliedSeq };
  }

  /**
   * The cold start's reading, which the cluster does not see: the stream's tail checked against
   * the newest checkpoint, then the newest valid checkpoint the stream continues, else the whole
   * stream from entry 1. Never rejects: resolves with what failed, if anything did.
   */
  async #restoreLocally(): Promise<Error | undefined> {
    const ctx = this.#ctx;
    try {
      await checkStreamTail(ctx);
      await restoreWithoutPrimary(ctx, ctx.store, ctx.checkpointStats, ctx.domain.replication);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /**
   * Cold start: the newest valid checkpoint the stream continues, else the whole stream from
   * entry 1 (both read by {@link #restoreLocally}), else a primary's full sync; with none of
   * them the node fails closed (the machine retries the start) instead of coming up with a
   * partial or empty state. First of all, a checkpoint past the stream's end (the stream lost
   * acknowledged entries) fails it closed, whatever else could be found: no older state is
   * served in its place.
   */
  async #coldStart(failed: Error | undefined): Promise<void> {
    const ctx = this.#ctx;
    await failingClosed(ctx, async () => {
      if (failed === undefined) return;
      if (!(failed instanceof FailClosedError) || failed instanceof StreamTailLostError)
        throw failed;
      if (!(await syncFromPrimary({ ctx })))
        throw new FailClosedError(`${failed.reason}, and no primary answered a full sync`);
    });
  }

  async #shutdown(): Promise<void> {
    await this.checkpointer?.stop();
    this.#ctx.members.stop();
    this.#ctx.keyWatch.stop();
    await this.#releaseNodeId();
    await this.deps.elector.close();
  }

  /**
   * Gives the lease back (a stopping primary already did, handing over): the member record, and
   * with it the node id, goes now instead of when the lease expires, so a node restarted under
   * the same id claims it at once rather than waiting up to a TTL (measured: a standby stopped
   * with SIGTERM and started again waited for its old lease as after a kill -9). Best effort,
   * bounded: unreachable, the lease expires as before.
   */
  async #releaseNodeId(): Promise<void> {
    let timer: TimerHandle | undefined;
    await Promise.race([
      this.deps.elector.resign().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = this.deps.clock.setTimeout(resolve, RELEASE_NODE_ID_MS);
      }),
    ]);
    timer?.clear();
  }
}
