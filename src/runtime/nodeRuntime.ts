import { createActor, fromCallback, fromPromise, type Actor, type SnapshotFrom } from 'xstate';
import {
  masterNodeMachine,
  type MasterNodeEvent,
  type NodeRole,
} from '../../machines/masterNode.machine.ts';
import { createApiHandler } from '../api/handler.ts';
import { CodecError } from '../domain/codec.ts';
import { toEntry } from '../domain/eventCodec.ts';
import { DEFAULT_EVICTION_POLICY, type EvictionPolicy } from '../domain/eviction.ts';
import { fold, FoldError } from '../domain/fold.ts';
import type { LoggedEvent } from '../domain/types.ts';
import type { ApiListener, ApiServerTransport } from '../ports/apiTransport.ts';
import type { Clock, TimerHandle } from '../ports/clock.ts';
import type { Elector, LeaderView } from '../ports/elector.ts';
import {
  NotRetainedError,
  type LogFollower,
  type OpLog,
  type OpLogWriter,
} from '../ports/opLog.ts';
import { CommittedStore } from './committedStore.ts';
import { ReadLeases } from './readLeases.ts';
import { WritePipeline } from './writePipeline.ts';

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
  readonly #stopped: Promise<void>;

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
        handOver: fromPromise(() => this.#handOver()),
        shutdown: fromPromise(() => this.#shutdown()),
      },
    });
    this.actor = createActor(machine, {
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
    this.actor.send({ type: 'node.stop' });
    await this.#stopped;
  }

  get role(): NodeRole {
    return this.#role;
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

  async #fullSync(): Promise<{ appliedSeq: number }> {
    // Until verification and chunked full sync from the primary land, a full sync re-folds
    // the log from its first entry; it fails (and is retried) when the stream was trimmed.
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
    apiServer.listen(createApiHandler(pipeline)).then(
      (l) => {
        if (stopped) void l.close();
        else {
          listener = l;
          logger.info({ event: 'serving', epoch }, 'serving clients');
        }
      },
      (err: unknown) => fault('oplog.fenced', `cannot listen: ${String(err)}`),
    );
    return () => {
      stopped = true;
      unLease();
      deadlineTimer?.clear();
      progressTimer?.clear();
      pipeline.close('not primary');
      void listener?.close();
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
    // another node can take over without waiting for the TTL.
    const leader = await elector.leader().catch(() => null);
    if (leader?.nodeId === this.deps.nodeId) await elector.resign().catch(() => undefined);
    return { appliedSeq: this.store.appliedSeq };
  }

  async #handOver(): Promise<{ appliedSeq: number }> {
    const { elector, clock, logger } = this.deps;
    const started = clock.now();
    await this.#pipeline?.drain();
    const target = this.store.appliedSeq;
    const deadline = clock.now() + this.#config.handoverTimeoutMs;
    while (clock.now() < deadline) {
      const members = await elector.members().catch(() => []);
      const ready = members.find(
        (m) =>
          m.nodeId !== this.deps.nodeId &&
          m.role === 'standby' &&
          target - m.appliedSeq <= this.#config.maxLagForPromotion,
      );
      if (ready !== undefined) break;
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 20));
    }
    this.#pipeline?.close('handed over');
    this.#pipeline = undefined;
    await this.#writer?.close();
    this.#writer = undefined;
    await elector.resign();
    logger.info(
      { event: 'handedOver', appliedSeq: target, tookMs: clock.now() - started },
      'resigned the leader key',
    );
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
