/**
 * The world of the failover simulation: 2-5 real {@link NodeRuntime}s over the memory OpLog,
 * the memory elector, a queue-group API bus and one {@link SimClock}, single-threaded and
 * deterministic from a seed. Each node sees time through its own {@link NodeClock} (offset and
 * bounded rate drift; paused nodes run no timers) and reaches the shared "etcd", "NATS" and
 * API bus through per-node gates, so the world can crash, restart, pause, resume and partition
 * nodes. A {@link SimChecker} records every answer a node gives and checks the invariants.
 */
import { MemoryApiBus, type ReplyFate } from '../../src/adapters/memory/memoryApiTransport.ts';
import { MemoryCheckpointStore } from '../../src/adapters/memory/memoryCheckpointStore.ts';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { MemoryLogStore, type StoredMessage } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { decodeJson } from '../../src/api/wire.ts';
import { type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import { allObjects, emptyState } from '../../src/domain/model/state.ts';
import type { LoggedEvent, MetadataState } from '../../src/domain/model/types.ts';
import {
  TransportTimeoutError,
  type ApiClientTransport,
  type ApiRequestHandler,
  type ApiServerTransport,
} from '../../src/ports/apiTransport.ts';
import type { Clock, TimerHandle } from '../../src/ports/clock.ts';
import type { Elector } from '../../src/ports/elector.ts';
import type { AppendAck, OpLog, OpLogWriter } from '../../src/ports/opLog.ts';
import { InspectionTape, recordingText } from '../../src/observe/inspectionTape.ts';
import { NodeRuntime, type RuntimeLogger } from '../../src/node/nodeRuntime.ts';
import { checkHistory, formatFailures, HistoryRecorder } from '../harness/history.ts';
import type { ApiInput, ApiOperation, ApiOutput } from '../harness/understudyModel.ts';
import { withoutSessions } from '../harness/withoutSessions.ts';
import {
  checkAtStart,
  CLUSTER_KEY_ID,
  clusterKeyCheck,
  EntryKeys,
  keyedOpLog,
  WRONG_KEY_ID,
} from './oplogKeys.ts';

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
const SIM_NODE_CONFIG = {
  leaseTtlMs: SIM_TTL_MS,
  verifyIntervalMs: 500,
  verifyFraction: 0.25,
  adminTimeoutMs: 1000,
  checkpointIntervalEntries: SIM_CHECKPOINT_EVERY,
  checkpointKeep: 1,
  checkpointCheckMs: 250,
} as const;
const START_MS = 1_000_000;

/** Deterministic PRNG (mulberry32) for the run-time choices of one schedule. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One node's clock: the shared simulated time, shifted by `offsetMs` and running at `rate`
 * (drift), whose timers are held while the node is paused and released on resume, and dropped
 * once the node crashed. Its wall reading can be stepped (as NTP or an operator would) without
 * moving its monotonic reading.
 */
export class NodeClock implements Clock {
  #paused = false;
  #dead = false;
  #held: Array<{ fn: () => void; cleared: boolean }> = [];
  /** Simulated time when the rate last changed, and the reading (less the offset) then. */
  #anchor: number;
  #base: number;
  #rate: number;

  constructor(
    readonly sim: SimClock,
    readonly offsetMs: number,
    rate: number,
    /** How far the wall clock was stepped, in total (ms; negative: back). */
    public wallStepMs = 0,
  ) {
    this.#anchor = this.#base = sim.now();
    this.#rate = rate;
  }

  get rate(): number {
    return this.#rate;
  }

  /** From now on the clock runs at `rate` (its reading goes on from where it is). */
  setRate(rate: number): void {
    this.#base += (this.sim.now() - this.#anchor) * this.#rate;
    this.#anchor = this.sim.now();
    this.#rate = rate;
  }

  monotonicNow(): number {
    return Math.floor(this.#base + this.offsetMs + (this.sim.now() - this.#anchor) * this.#rate);
  }

  wallNow(): number {
    return this.monotonicNow() + this.wallStepMs;
  }

  /** Steps the wall clock by `ms` (negative: back); the monotonic clock does not move. */
  stepWall(ms: number): void {
    this.wallStepMs += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { fn, cleared: false };
    const realMs = Math.ceil((Math.max(0, ms) + 1) / this.#rate);
    const handle = this.sim.setTimeout(() => {
      if (this.#dead || timer.cleared) return;
      if (this.#paused) this.#held.push(timer);
      else fn();
    }, realMs);
    return {
      clear: () => {
        timer.cleared = true;
        handle.clear();
      },
    };
  }

  get paused(): boolean {
    return this.#paused;
  }

  pause(): void {
    this.#paused = true;
  }

  /** Runs every timer that fell due while paused, in order. */
  resume(): void {
    this.#paused = false;
    for (const timer of this.#held.splice(0)) if (!timer.cleared && !this.#dead) timer.fn();
  }

  /** The node crashed: nothing of it runs again. */
  kill(): void {
    this.#dead = true;
    this.#held = [];
  }
}

/** One entry of the readable trace: time, node, machine state and what happened. */
export interface TraceEntry {
  readonly t: number;
  readonly node: string;
  readonly state: string;
  readonly event: string;
}

/**
 * A broken variant of the system, to show the checkers catch it: (a) appends without the
 * expected sequence, (b) folding and answering before the acknowledgement, (c) no lease-deadline
 * check, (d) no session table (requests carry no session, so a retry is applied again), (e)
 * refusals answered before the appends they were judged against commit, (f) lease deadlines on
 * the wall clock, which NTP steps.
 */
export type Breakage =
  | 'none'
  | 'appendWithoutExpectedSeq'
  | 'foldBeforeAck'
  | 'noLeaseDeadline'
  | 'noSessionTable'
  | 'refusalsBeforeCommit'
  | 'wallClockDeadline';

export interface WorldOptions {
  readonly nodes: number;
  readonly seed: number;
  /** Per node: clock offset (ms) and rate (1 +- drift). */
  readonly clocks?: readonly { readonly offsetMs: number; readonly rate: number }[];
  readonly breakage?: Breakage;
  readonly traceLimit?: number;
  /**
   * Which invariants fail a run: all of them (default), or only the client-visible contract
   * (`history`: linearizability of the client history), to show what that checker finds alone.
   */
  readonly checks?: 'all' | 'history';
}

interface NodeSlot {
  readonly id: string;
  clock: NodeClock;
  runtime: NodeRuntime | undefined;
  elector: Elector | undefined;
  crashed: boolean;
  paused: boolean;
  etcdCut: boolean;
  natsCut: boolean;
  acksCut: boolean;
  /** Requests that reached the node while it was paused. */
  held: Array<() => void>;
  /** Bumped on every restart: answers of an older incarnation are dropped. */
  incarnation: number;
  /** The node's machine events, every incarnation (written out when a schedule fails). */
  readonly tape: InspectionTape;
  /** Its clock ran beyond the margin the lease design tolerates ({@link SimWorld.drift}). */
  drifted: boolean;
  /** The OpLog key id it runs with ({@link SimWorld.wrongKey}). */
  keyId: string;
}

/** An invariant broke: what, and the trace that led there. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(
    readonly invariant: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${invariant}: ${message}`, options);
  }
}

const WRITE_OPS: Record<string, string> = {
  mountSegment: 'MOUNT_SEGMENT',
  unmountSegment: 'UNMOUNT_SEGMENT',
  putStart: 'PUT_START',
  putEnd: 'PUT_END',
  putRevoke: 'PUT_REVOKE',
  remove: 'REMOVE',
};

/** A write a node acknowledged. */
interface AckedWrite {
  readonly node: string;
  readonly epoch: number;
  readonly op: string;
  readonly key: string;
  readonly seq: number;
}

/** A get a node answered: the key was read-leased by that primary. */
interface LeasedRead {
  readonly node: string;
  readonly epoch: number;
  readonly key: string;
}

function keyOf(op: string, body: Uint8Array): string {
  const value = decodeJson(body) as Record<string, unknown>;
  const key = op === 'mountSegment' || op === 'unmountSegment' ? value['segmentId'] : value['key'];
  return typeof key === 'string' ? key : '';
}

/** The simulated cluster. */
export class SimWorld {
  readonly sim = new SimClock(START_MS);
  readonly coord = new MemoryCoordinator(this.sim);
  readonly store: MemoryLogStore;
  readonly bus: MemoryApiBus;
  readonly slots: NodeSlot[] = [];
  readonly trace: TraceEntry[] = [];
  readonly random: () => number;
  readonly breakage: Breakage;
  /** Reply loss rate of the API bus, in [0, 1). */
  lossRate = 0;
  readonly acked: AckedWrite[] = [];
  readonly leasedReads: LeasedRead[] = [];
  /** Node that acknowledged writes per epoch. */
  readonly writerOfEpoch = new Map<number, string>();
  readonly #traceLimit: number;
  /**
   * The admin channel (verification rounds, repairs, full sync from the primary): a bus of its
   * own, as the admin subjects are NATS subjects of their own.
   */
  readonly adminBus: MemoryApiBus;
  /**
   * The cluster's checkpoints. Nodes write one every {@link SIM_CHECKPOINT_EVERY} entries and
   * the stream is trimmed below the oldest one kept (the real retention): entries the checks
   * read are kept in {@link SimWorld.#trimmed} first.
   */
  readonly checkpoints = new MemoryCheckpointStore(this.sim);
  /** How many times the nodes logged each event (`checkpointWritten`, `fullSynced`, ...). */
  readonly events = new Map<string, number>();
  /** Entries retention trimmed from the stream, in seq order (the checks read the whole log). */
  readonly #trimmed: OpLogEntry[] = [];
  #reference: MetadataState = emptyState();
  #referenceDigest: { seq: number; digest: number } | undefined;
  #checkedEntries = 0;
  #fenceEpoch = 0;
  #lastEpochSeen = 0;
  #clients: UnderstudyClient[] = [];
  /** Every client call, with its answer, on the simulated clock: checked for linearizability. */
  readonly history = new HistoryRecorder(() => this.sim.now());
  /** Seq of each EVICTION entry -> when a serving primary's committed state first held it. */
  readonly #evictionVisibleAt = new Map<number, number>();

  constructor(readonly options: WorldOptions) {
    this.random = prng(options.seed);
    this.breakage = options.breakage ?? 'none';
    this.#traceLimit = options.traceLimit ?? 400;
    this.store =
      this.breakage === 'appendWithoutExpectedSeq' ? new UnfencedLogStore() : new MemoryLogStore();
    // Each admin reply takes 1 ms, as a network round trip does: a loop of full syncs from a
    // deposed primary (whose state the stream no longer continues) then lets time pass, so the
    // deposed primary steps down, instead of spinning at one instant for good.
    this.adminBus = new MemoryApiBus({
      clock: this.sim,
      queueGroup: true,
      replyFate: () => ({ kind: 'delay', ms: 1 }),
    });
    this.bus = new MemoryApiBus({
      clock: this.sim,
      queueGroup: true,
      pickListener: (_request, count) => Math.floor(this.random() * count),
      replyFate: () => this.#fate(),
    });
    for (let i = 0; i < options.nodes; i++) {
      const drift = options.clocks?.[i] ?? { offsetMs: 0, rate: 1 };
      const slot: NodeSlot = {
        id: `n${i + 1}`,
        clock: new NodeClock(this.sim, drift.offsetMs, drift.rate),
        runtime: undefined,
        elector: undefined,
        crashed: false,
        paused: false,
        etcdCut: false,
        natsCut: false,
        acksCut: false,
        held: [],
        incarnation: 0,
        tape: new InspectionTape(`n${i + 1}`, () => this.sim.now()),
        drifted: false,
        keyId: CLUSTER_KEY_ID,
      };
      this.slots.push(slot);
      this.#boot(slot);
    }
  }

  // ---- time -------------------------------------------------------------------------------

  /** Advances simulated time by `ms`, firing timers in order and letting every callback run. */
  async run(ms: number): Promise<void> {
    const target = this.sim.now() + ms;
    await this.#tick();
    for (;;) {
      const due = this.sim.nextDueMs();
      if (due === undefined || due > target) break;
      this.sim.advance(Math.max(0, due - this.sim.now()));
      await this.#tick();
    }
    this.sim.advance(target - this.sim.now());
    await this.#tick();
  }

  async #tick(): Promise<void> {
    await tick();
    this.#noteEvictions();
    this.#checkLeaderKey();
    this.#exitRefused();
  }

  /** A node that refused to go on (its OpLog key is not the cluster's) exits, as its process does. */
  #exitRefused(): void {
    this.slots.forEach((slot, i) => {
      if (slot.crashed || slot.runtime?.refusal === undefined) return;
      this.note(`${slot.id} exits: ${slot.runtime.refusal.name}`);
      void this.crash(i);
    });
  }

  /**
   * Node `i` restarts with a wrong OpLog key (at most one node of the cluster at a time has
   * one, so that the others can keep a primary). With `atStart`, the process's start-up check
   * refuses it (and every later restart); without, it got past that check (as when the cluster
   * moved to another key while it ran): it must find out from the first primary's message it
   * passes over, exit, and never become primary meanwhile.
   */
  async wrongKey(i: number, atStart: boolean): Promise<void> {
    const slot = this.#slot(i);
    if (this.slots.some((s) => s !== slot && s.keyId !== CLUSTER_KEY_ID)) return;
    await this.crash(i);
    slot.keyId = WRONG_KEY_ID;
    this.restart(i, { keyCheck: atStart });
  }

  /**
   * Since when the leader key's holder has not been a running primary, who it is, and whether
   * it was down (crashed, paused or cut off from etcd) then.
   */
  #keyNotServing:
    | {
        readonly nodeId: string;
        readonly since: number;
        readonly down: boolean;
        readonly incarnation: number | undefined;
      }
    | undefined;

  /**
   * Invariant, checked after every turn: no node holds the leader key for longer than one TTL
   * (+ {@link LEADER_KEY_SLACK_MS}) while it is not a running primary (partitioned, a standby,
   * or promoting: promotion gives the lease up within one TTL), nor for longer than one TTL
   * after it went down (crashed, paused, or cut off from etcd, so that it can neither keep the
   * lease alive nor give it up): its last keep-alive was at most then, as with etcd, so the
   * count starts again when the holder goes down.
   */
  #checkLeaderKey(): void {
    const holder = this.coord.currentLeader();
    const slot = holder === null ? undefined : this.slots.find((s) => s.id === holder.nodeId);
    const serving =
      slot !== undefined && !slot.crashed && !slot.paused && slot.runtime?.role === 'primary';
    if (holder === null || serving) {
      this.#keyNotServing = undefined;
      return;
    }
    const now = this.sim.now();
    const down = slot === undefined || slot.crashed || slot.paused || slot.etcdCut;
    // A holder restarted within one turn (crashed and started again, as the wrongKey step does)
    // went down too: its old incarnation's last keep-alive was at most then.
    const incarnation = slot?.incarnation;
    if (
      this.#keyNotServing?.nodeId !== holder.nodeId ||
      (down && !this.#keyNotServing.down) ||
      this.#keyNotServing.incarnation !== incarnation
    ) {
      this.#keyNotServing = { nodeId: holder.nodeId, since: now, down, incarnation };
    }
    const held = now - this.#keyNotServing.since;
    if (held > SIM_TTL_MS + LEADER_KEY_SLACK_MS) {
      const state =
        slot === undefined
          ? 'unknown'
          : slot.crashed
            ? 'crashed'
            : slot.paused
              ? 'paused'
              : (slot.runtime?.role ?? 'none');
      this.#violation(
        'the leader key is held only by a running primary, but for one TTL',
        `${holder.nodeId} (${state}) has held the leader key for ${held} ms without serving`,
      );
    }
  }

  /**
   * Evictions are the primary's own writes: no client call stands for them. The history gets
   * each as an operation that returns when a serving primary's committed state first holds it
   * (from then on every read sees it), noted after every turn of the simulation.
   */
  #noteEvictions(): void {
    let applied = -1;
    for (const slot of this.slots) {
      if (!slot.crashed && slot.runtime?.role === 'primary')
        applied = Math.max(applied, slot.runtime.store.appliedSeq);
    }
    if (applied < 0) return;
    for (const entry of this.logEntries()) {
      if (entry.seq > applied) break;
      if (entry.op === 'EVICTION' && !this.#evictionVisibleAt.has(entry.seq))
        this.#evictionVisibleAt.set(entry.seq, this.sim.now());
    }
  }

  /** Makes a client call and records it in {@link SimWorld.history}; never rejects. */
  call(
    client: UnderstudyClient,
    clientId: number,
    input: ApiInput,
  ): Promise<ApiOutput | undefined> {
    return this.history.call(client, clientId, input);
  }

  /** Runs until `done()` holds or `limitMs` passed; returns whether it holds. */
  async runUntil(done: () => boolean, limitMs: number, stepMs = 20): Promise<boolean> {
    const until = this.sim.now() + limitMs;
    while (!done()) {
      if (this.sim.now() >= until) return false;
      await this.run(stepMs);
    }
    return true;
  }

  // ---- nodes ------------------------------------------------------------------------------

  #boot(slot: NodeSlot): void {
    const { id } = slot;
    const clock = slot.clock;
    const incarnation = slot.incarnation;
    // Broken variant (f): every lease and deadline decision on the wall clock.
    const nodeClock: Clock =
      this.breakage === 'wallClockDeadline'
        ? {
            monotonicNow: () => clock.wallNow(),
            wallNow: () => clock.wallNow(),
            setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
          }
        : clock;
    let elector: Elector = createMemoryElector(this.coord, {
      nodeId: id,
      ttlMs: SIM_TTL_MS,
      clock: nodeClock,
    });
    if (this.breakage === 'noLeaseDeadline') elector = withoutLeaseDeadline(elector);
    let opLog: OpLog = createMemoryOpLog(this.store, {
      nodeId: id,
      clock: nodeClock,
      timeoutMs: 1000,
    });
    if (this.breakage === 'foldBeforeAck') opLog = ackingAtSend(opLog);
    opLog = keyedOpLog(this.#archiving(opLog, nodeClock, slot.keyId), slot.keyId, this.#entryKeys);
    const logger = this.#logger(slot);
    const runtime = new NodeRuntime({
      nodeId: id,
      address: `sim://${id}`,
      opLog,
      elector,
      apiServer: this.#serverFor(slot, incarnation),
      admin: {
        server: this.#adminServerFor(slot, incarnation),
        client: this.#adminClientFor(slot),
      },
      checkpoints: this.checkpoints,
      clusterKey: clusterKeyCheck(SIM_CLUSTER, slot.keyId, () => !slot.etcdCut && !slot.paused),
      clock: nodeClock,
      logger,
      config: SIM_NODE_CONFIG,
      inspect: slot.tape.inspect,
      ...(this.breakage === 'refusalsBeforeCommit'
        ? { brokenForTest: { refusalsBeforeCommit: true } }
        : {}),
    });
    let last = '';
    runtime.actor.subscribe({
      next: (snapshot) => {
        const value = JSON.stringify(snapshot.value);
        if (value !== last) {
          last = value;
          this.#trace(id, runtime.role, `machine ${value}`);
        }
      },
      error: () => undefined,
    });
    slot.runtime = runtime;
    slot.elector = elector;
    runtime.start();
  }

  #logger(slot: NodeSlot): RuntimeLogger {
    const put = (level: string, fields: object, msg: string): void => {
      const event = (fields as { event?: unknown }).event;
      if (typeof event === 'string') this.events.set(event, (this.events.get(event) ?? 0) + 1);
      const extra = Object.entries(fields)
        .filter(([k]) => k !== 'event' && k !== 'state')
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
      this.#trace(slot.id, slot.runtime?.role ?? 'starting', `${level} ${msg} ${extra}`.trim());
    };
    return {
      info: (f, m) => put('info', f, m),
      warn: (f, m) => put('warn', f, m),
      error: (f, m) => put('error', f, m),
    };
  }

  #trace(node: string, state: string, event: string): void {
    this.trace.push({ t: this.sim.now() - START_MS, node, state, event });
    if (this.trace.length > this.#traceLimit)
      this.trace.splice(0, this.trace.length - this.#traceLimit);
  }

  /** Marks a schedule step in the trace. */
  note(event: string): void {
    this.#trace('world', '-', event);
  }

  /** Crash: the machine stops, keep-alives stop, nothing is revoked. */
  async crash(i: number): Promise<void> {
    const slot = this.#slot(i);
    if (slot.crashed) return;
    slot.crashed = true;
    slot.clock.kill();
    slot.held = [];
    slot.runtime?.actor.stop();
    await slot.elector?.close();
  }

  /**
   * Graceful stop (SIGTERM): a primary hands over first. Resolves at once; once the machine has
   * stopped the node counts as crashed (a restart brings it back).
   */
  stop(i: number): Promise<void> {
    const slot = this.#slot(i);
    const runtime = slot.runtime;
    if (slot.crashed || slot.paused || runtime === undefined) return Promise.resolve();
    const incarnation = slot.incarnation;
    return runtime.stop().then(async () => {
      if (slot.crashed || slot.incarnation !== incarnation) return;
      slot.crashed = true;
      slot.clock.kill();
      slot.held = [];
      await slot.elector?.close();
    });
  }

  /** Planned switchover on the running primary, if there is one (to `target`'s id, if given). */
  switchover(target?: number): Promise<unknown> {
    const [primary] = this.primaries();
    if (primary === undefined) return Promise.resolve();
    const to = target === undefined ? undefined : this.#slot(target).id;
    return primary.switchover(to === primary.status().nodeId ? undefined : to);
  }

  /**
   * Restart: a new runtime with an empty committed store that re-follows the log from 1; the
   * process's start-up check of its OpLog key first (unless `keyCheck` is false).
   */
  restart(i: number, options: { readonly keyCheck?: boolean } = {}): void {
    const slot = this.#slot(i);
    if (!slot.crashed) return;
    if (options.keyCheck !== false) {
      try {
        checkAtStart(SIM_CLUSTER, slot.keyId);
      } catch (err) {
        this.events.set('refusedAtStart', (this.events.get('refusedAtStart') ?? 0) + 1);
        this.note(`${slot.id} refuses to start: ${String(err)}`);
        return;
      }
    }
    slot.crashed = false;
    slot.paused = false;
    slot.incarnation++;
    slot.clock = new NodeClock(
      this.sim,
      slot.clock.offsetMs,
      slot.clock.rate,
      slot.clock.wallStepMs,
    );
    this.#applyCuts(slot);
    this.#boot(slot);
  }

  /** Pause: the node processes nothing while time passes (timers, log, etcd and requests held). */
  pause(i: number): void {
    const slot = this.#slot(i);
    if (slot.crashed || slot.paused) return;
    slot.paused = true;
    slot.clock.pause();
    this.#applyCuts(slot);
  }

  /** Resume with stale beliefs: held requests first, then the held timers. */
  resume(i: number): void {
    const slot = this.#slot(i);
    if (!slot.paused) return;
    slot.paused = false;
    this.#applyCuts(slot);
    for (const run of slot.held.splice(0)) run();
    // What the node had in flight goes out first; its timers run a moment later.
    const clock = slot.clock;
    this.sim.setTimeout(() => {
      if (!slot.paused) clock.resume();
    }, 0);
  }

  cut(i: number, what: 'etcd' | 'nats' | 'both' | 'acks'): void {
    const slot = this.#slot(i);
    if (what === 'etcd' || what === 'both') slot.etcdCut = true;
    if (what === 'nats' || what === 'both') slot.natsCut = true;
    if (what === 'acks') slot.acksCut = true;
    this.#applyCuts(slot);
  }

  /** Whether a clock ran beyond the margin the lease reads rely on ({@link SimWorld.drift}). */
  get driftBeyondMargin(): boolean {
    return this.slots.some((s) => s.drifted);
  }

  /** When a node whose clock ran beyond the margin answered a read (sim time). */
  readonly #driftedReadsAt: number[] = [];

  /**
   * Whether a read `slot` answers now in `epoch` may be stale ({@link SimWorld.drift}): its
   * clock runs slow beyond the margin, and etcd no longer holds its leader key of that epoch.
   */
  #mayBeStale(slot: NodeSlot, epoch: number): boolean {
    if (!slot.drifted || slot.clock.rate >= 1) return false;
    const leader = this.coord.currentLeader();
    return leader?.nodeId !== slot.id || leader.epoch !== epoch;
  }

  /**
   * Node `i`'s clock runs at `rate` from now on, beyond the +-5 % the design allows (a broken
   * clock source, a VM whose time runs slow). A primary whose clock runs slow believes its
   * lease longer than etcd keeps it, so reads it answers may be stale: that is the documented
   * limit of lease reads (docs/client-contract.md, "Monotonic time"). It is stale only once
   * etcd let that lease go: while etcd still holds its leader key of the epoch it answers in,
   * nobody else can have been elected since. A clock that runs fast ends the lease early: its
   * reads are safe. The margin holds for every other node: a primary whose clock keeps within it
   * stops answering before etcd lets its lease go, whatever another node's clock does. So the
   * world checks every read but those a slow node answers without holding the leader key (their
   * linearizability: a client call during which it answered such a read is left out of the
   * history; that a fenced node answers none; read leases across a promotion), and read leases
   * across a promotion a drifted node makes (a clock running fast waits less than the TTL).
   */
  drift(i: number, rate: number): void {
    const slot = this.#slot(i);
    slot.drifted = true;
    slot.clock.setRate(rate);
  }

  /** Steps node `i`'s wall clock by `ms` (negative: back), as NTP would; its monotonic clock runs on. */
  stepWall(i: number, ms: number): void {
    this.#slot(i).clock.stepWall(ms);
  }

  /** Ends a NATS partition of the node (other cuts stay). */
  reconnectNats(i: number): void {
    const slot = this.#slot(i);
    slot.natsCut = false;
    this.#applyCuts(slot);
  }

  heal(i: number): void {
    const slot = this.#slot(i);
    slot.etcdCut = false;
    slot.natsCut = false;
    slot.acksCut = false;
    this.#applyCuts(slot);
  }

  /** Ends every fault: heal, resume, restart, lossless bus. */
  endFaults(): void {
    this.lossRate = 0;
    this.#dropNext = 0;
    this.slots.forEach((slot, i) => {
      this.heal(i);
      this.resume(i);
      this.restart(i);
    });
  }

  #applyCuts(slot: NodeSlot): void {
    const { id } = slot;
    if (slot.paused || slot.etcdCut) this.coord.partition(id);
    else if (this.coord.isPartitioned(id)) this.coord.heal(id);
    // A heal ends both a partition and dropped acks, and wakes what waited: heal only when a
    // partition ends (dropped acks matter only when the node is reachable).
    const partitioned = slot.paused || slot.natsCut;
    const wasPartitioned = this.store.isPartitioned(id);
    if (
      (wasPartitioned && !partitioned) ||
      (!partitioned && !slot.acksCut && this.store.acksDropped(id))
    ) {
      this.store.heal(id);
    }
    if (partitioned && !wasPartitioned) this.store.partition(id);
    if (slot.acksCut && !this.store.acksDropped(id)) this.store.dropAcks(id);
  }

  /**
   * The whole log: what retention trimmed, then what the stream holds; never what an outsider
   * published ({@link SimWorld.outsider}).
   */
  logEntries(): OpLogEntry[] {
    const held =
      this.#outsiderMessages.size === 0
        ? this.store.entries()
        : this.store
            .messages()
            .filter((m) => !this.#outsiderMessages.has(m.streamSeq))
            .flatMap((m) => m.entries);
    return this.#trimmed.length === 0 ? held : [...this.#trimmed, ...held];
  }

  /**
   * When each entry (`epoch/seq`) was first handed to a writer, on its writer's monotonic clock:
   * the time within an epoch that `ts` (logged time, held still by a wall clock behind it) is not.
   */
  readonly #appendedAt = new Map<string, number>();
  /** Which OpLog key each entry was written under ({@link SimWorld.wrongKey}). */
  readonly #entryKeys = new EntryKeys();
  /** The same on the simulated clock (an eviction's invocation in the history). */
  readonly #appendedSimAt = new Map<string, number>();

  /** Stream messages an outsider published: no part of the log. */
  readonly #outsiderMessages = new Set<number>();

  /**
   * Publishes to the OpLog subject as an outsider would (or a disk corrupts): `garbage` that does
   * not decode; a forged `fence` (an EPOCH of no election); an entry stamped with an epoch
   * nobody was elected at (`foreign`) or with an earlier one (`stale`). Its seq is `ahead` past
   * the log's last entry. Its message takes the next stream slot: the primary's next append
   * is fenced.
   */
  outsider(what: 'garbage' | 'fence' | 'foreign' | 'stale', ahead: number, key: string): void {
    if (what === 'garbage') {
      this.#outsiderMessages.add(this.store.publishUndecodable("an outsider's garbage"));
      return;
    }
    const log = this.logEntries();
    const seq = (log[log.length - 1]?.seq ?? 0) + ahead;
    const current = this.#lastEpochSeen;
    const forged: LoggedEvent =
      what === 'fence'
        ? { seq, epoch: 1e9, ts: 0, event: { op: 'EPOCH', epoch: 1e9, nodeId: 'n1' } }
        : {
            seq,
            epoch: what === 'foreign' ? current + 1e6 : current - 1,
            ts: 0,
            event: { op: 'REMOVE', key },
          };
    this.#outsiderMessages.add(this.store.publishOutsider([toEntry(forged)]));
  }

  /**
   * `opLog`, keeping what its trims remove in {@link SimWorld.#trimmed} first, and noting when
   * each entry was first handed to a writer, on the clock of the node that wrote it.
   */
  #archiving(opLog: OpLog, clock: Clock, keyId: string): OpLog {
    return {
      openWriter: (options) => {
        const writer = opLog.openWriter(options);
        return {
          append: (entries) => {
            this.#entryKeys.written(entries, keyId);
            for (const e of entries) {
              const key = `${e.epoch}/${e.seq}`;
              if (!this.#appendedAt.has(key)) this.#appendedAt.set(key, clock.monotonicNow());
              if (!this.#appendedSimAt.has(key)) this.#appendedSimAt.set(key, this.sim.now());
            }
            return writer.append(entries);
          },
          get fenced() {
            return writer.fenced;
          },
          close: () => writer.close(),
        };
      },
      follow: (fromSeq, options) => opLog.follow(fromSeq, options),
      bounds: () => opLog.bounds(),
      close: () => opLog.close(),
      trimThrough: (streamSeq) => {
        for (const message of this.store.messages()) {
          if (message.streamSeq <= streamSeq && !this.#outsiderMessages.has(message.streamSeq)) {
            this.#trimmed.push(...message.entries);
          }
        }
        return opLog.trimThrough?.(streamSeq) ?? Promise.resolve();
      },
    };
  }

  /** The admin server of `slot`'s incarnation: silent while it is down or cut off from NATS. */
  #adminServerFor(slot: NodeSlot, incarnation: number): ApiServerTransport {
    return this.#incarnationServer(this.adminBus, slot, incarnation, () => slot.natsCut);
  }

  /** The admin client of `slot`: a request from a node cut off from NATS gets no answer. */
  #adminClientFor(slot: NodeSlot): ApiClientTransport {
    const inner = this.adminBus.clientTransport(SIM_CLUSTER);
    return {
      request: (op, body, timeoutMs) => {
        if (!slot.natsCut) return inner.request(op, body, timeoutMs);
        return new Promise((_resolve, reject) => {
          slot.clock.setTimeout(() => reject(new TransportTimeoutError(op, timeoutMs)), timeoutMs);
        });
      },
      close: () => inner.close(),
    };
  }

  /** Node -1 stands for the first primary (see {@link SimWorld.markFirstPrimary}). */
  #firstPrimary = 0;

  /** Remembers which node is primary now, as node -1 of the schedule. */
  markFirstPrimary(): void {
    const index = this.slots.findIndex((s) => !s.crashed && s.runtime?.role === 'primary');
    this.#firstPrimary = Math.max(0, index);
  }

  /** Node -1 is the first primary, -2 the node after it (a standby then). */
  #slot(i: number): NodeSlot {
    const index =
      i === -2
        ? (this.#firstPrimary + 1) % this.slots.length
        : i < 0
          ? this.#firstPrimary
          : i % this.slots.length;
    const slot = this.slots[index];
    if (slot === undefined) throw new RangeError(`no node ${i}`);
    return slot;
  }

  /** Live runtimes (not crashed). */
  live(): NodeRuntime[] {
    return this.slots.flatMap((s) => (!s.crashed && s.runtime !== undefined ? [s.runtime] : []));
  }

  primaries(): NodeRuntime[] {
    return this.live().filter((n) => n.role === 'primary');
  }

  // ---- clients ----------------------------------------------------------------------------

  async client(): Promise<UnderstudyClient> {
    const transport = this.bus.clientTransport(SIM_CLUSTER);
    const sessionId = Array.from({ length: 4 }, () =>
      Math.floor(this.random() * 2 ** 32)
        .toString(16)
        .padStart(8, '0'),
    ).join('');
    const client = await createClient({
      cluster: SIM_CLUSTER,
      // Broken variant (d): the requests lose their session on the way.
      transport: this.breakage === 'noSessionTable' ? withoutSessions(transport) : transport,
      clock: this.sim,
      requestTimeoutMs: 400,
      deadlineMs: 6000,
      random: this.random,
      sessionId,
    });
    this.#clients.push(client);
    return client;
  }

  /** Replies still to drop (see {@link SimWorld.dropReplies}). */
  #dropNext = 0;

  /** The next `count` replies on the bus are lost: the requests are served, the answers never arrive. */
  dropReplies(count: number): void {
    this.#dropNext += count;
  }

  #fate(): ReplyFate {
    if (this.#dropNext > 0) {
      this.#dropNext--;
      return { kind: 'drop' };
    }
    if (this.lossRate <= 0) return { kind: 'deliver' };
    const r = this.random();
    if (r >= this.lossRate) return { kind: 'deliver' };
    const which = Math.floor((r / this.lossRate) * 3);
    if (which === 0) return { kind: 'drop' };
    if (which === 1) return { kind: 'dropRequest' };
    return { kind: 'delay', ms: 50 + Math.floor(this.random() * 600) };
  }

  /** Each node's API server: held while paused, and every answer recorded and checked. */
  #serverFor(slot: NodeSlot, incarnation: number): ApiServerTransport {
    return this.#incarnationServer(
      this.bus,
      slot,
      incarnation,
      () => false,
      (op, body) => {
        const epoch = slot.runtime?.actor.getSnapshot().context.epoch ?? 0;
        const fenceAtStart = this.#currentFenceEpoch();
        return (reply) => this.#recordAnswer(slot, op, body, reply, epoch, fenceAtStart);
      },
    );
  }

  /**
   * A server transport on `bus` for `slot`'s `incarnation`, as a process would serve it: a
   * request reaching a dead incarnation, or one `silent()` says cannot be reached, gets no
   * answer; one reaching a paused node waits for its resume; an answer produced after the
   * incarnation died is lost (a killed process sends nothing). `onServe`, called as a request
   * is served, may return what to do with its answer.
   */
  #incarnationServer(
    bus: MemoryApiBus,
    slot: NodeSlot,
    incarnation: number,
    silent: () => boolean,
    onServe?: (op: string, body: Uint8Array) => (reply: Uint8Array) => void,
  ): ApiServerTransport {
    const inner = bus.serverTransport(SIM_CLUSTER);
    const dead = (): boolean => slot.crashed || slot.incarnation !== incarnation;
    return {
      listen: (handler, options) => {
        const wrapped: ApiRequestHandler = (op, body) => {
          if (dead() || silent()) return new Promise(() => undefined);
          const serve = (): Promise<Uint8Array> => {
            const answered = onServe?.(op, body);
            return handler(op, body).then((reply) => {
              if (dead()) return new Promise<Uint8Array>(() => undefined);
              answered?.(reply);
              return reply;
            });
          };
          if (!slot.paused) return serve();
          return new Promise((resolve, reject) => {
            slot.held.push(() => {
              serve().then(resolve, reject);
            });
          });
        };
        return inner.listen(wrapped, options);
      },
    };
  }

  // ---- invariants -------------------------------------------------------------------------

  /** The first violation: kept, because one found inside a node's callback is thrown there. */
  #failure: InvariantViolation | undefined;

  #violation(invariant: string, message: string): void {
    if (this.options.checks === 'history' && invariant !== 'linearizable') return;
    this.#failure ??= new InvariantViolation(invariant, `${message}\n${this.formatTrace()}`);
    throw this.#failure;
  }

  /** The largest epoch fenced into the log so far. */
  #currentFenceEpoch(): number {
    this.#scanLog();
    return this.#fenceEpoch;
  }

  #recordAnswer(
    slot: NodeSlot,
    op: string,
    body: Uint8Array,
    reply: Uint8Array,
    epochAtStart: number,
    fenceAtStart: number,
  ): void {
    const answer = decodeJson(reply) as { ok: boolean; result?: Record<string, unknown> };
    if (!answer.ok) return;
    const epoch = slot.runtime?.actor.getSnapshot().context.epoch ?? 0;
    const key = keyOf(op, body);
    this.#trace(slot.id, slot.runtime?.role ?? '?', `answered ${op}(${key}) epoch=${epoch}`);
    const logOp = WRITE_OPS[op];
    if (logOp !== undefined) {
      const seq = Number(answer.result?.['seq']);
      const write: AckedWrite = { node: slot.id, epoch, op: logOp, key, seq };
      this.acked.push(write);
      const writer = this.writerOfEpoch.get(epoch);
      if (writer !== undefined && writer !== slot.id) {
        this.#violation(
          'one writer per epoch',
          `${slot.id} and ${writer} both acknowledged writes in epoch ${epoch}`,
        );
      }
      this.writerOfEpoch.set(epoch, slot.id);
      this.#checkAcked(write);
    } else if (op === 'get' || op === 'exists') {
      if (this.#mayBeStale(slot, epoch)) {
        this.#driftedReadsAt.push(this.sim.now());
        return;
      }
      if (epochAtStart < fenceAtStart) {
        this.#violation(
          'a fenced node answers nothing',
          `${slot.id} (epoch ${epochAtStart}) answered ${op}(${key}) after epoch ${fenceAtStart} was fenced into the log`,
        );
      }
      if (op === 'get') this.leasedReads.push({ node: slot.id, epoch, key });
    }
  }

  /**
   * An acknowledged write is in the log, at its seq, from its epoch or (a retry answered with
   * the original result from the session table) an earlier one.
   */
  #checkAcked(write: AckedWrite): void {
    const entry = this.logEntries().find((e) => e.seq === write.seq);
    if (entry?.op !== write.op || entry.key !== write.key || entry.epoch > write.epoch) {
      this.#violation(
        'acknowledged writes are in the log',
        `${write.node} acknowledged ${write.op}(${write.key}) at seq ${write.seq} in epoch ${write.epoch}, ` +
          `but the log holds ${entry === undefined ? 'nothing' : `${entry.op}(${entry.key}) of epoch ${entry.epoch}`} there`,
      );
    }
  }

  /** Folds new log entries into the reference state, checking the log is one linear history. */
  #scanLog(): void {
    const entries = this.logEntries();
    for (; this.#checkedEntries < entries.length; this.#checkedEntries++) {
      const entry = entries[this.#checkedEntries]!;
      const expected = this.#reference.appliedSeq + 1;
      if (entry.seq !== expected) {
        this.#violation(
          'the log is one linear history',
          `entry #${this.#checkedEntries + 1} has seq ${entry.seq}, expected ${expected}`,
        );
      }
      if (entry.op === 'EPOCH') {
        if (entry.epoch <= this.#lastEpochSeen) {
          this.#violation(
            'epochs strictly increase',
            `EPOCH ${entry.epoch} at seq ${entry.seq} after epoch ${this.#lastEpochSeen}`,
          );
        }
        this.#lastEpochSeen = entry.epoch;
        this.#fenceEpoch = entry.epoch;
      } else if (entry.epoch !== this.#lastEpochSeen) {
        this.#violation(
          'one writer per epoch',
          `${entry.op}(${entry.key}) at seq ${entry.seq} has epoch ${entry.epoch} inside epoch ${this.#lastEpochSeen}`,
        );
      }
      const logged = fromEntry(entry);
      if (logged.origin !== undefined) {
        const request = `${logged.origin.sessionId}#${logged.origin.requestNo}`;
        const first = this.#requestSeqs.get(request);
        if (first !== undefined) {
          this.#violation(
            'a request is applied at most once',
            `request ${logged.origin.requestNo} of session ${logged.origin.sessionId} is in the log at seq ${first} and again at seq ${entry.seq}`,
          );
        }
        this.#requestSeqs.set(request, entry.seq);
      }
      this.#reference = fold(this.#reference, logged);
    }
  }

  /** The seq of every logged request (`sessionId#requestNo`). */
  readonly #requestSeqs = new Map<string, number>();

  /** The fold of the log so far (see {@link SimWorld.checkStep}). */
  get reference(): MetadataState {
    return this.#reference;
  }

  /** The invariants that hold after every step. */
  checkStep(): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#scanLog();
    this.#checkLeasesAfterPromotion();
    for (const slot of this.slots) {
      if (slot.keyId !== CLUSTER_KEY_ID && !slot.crashed && slot.runtime?.role === 'primary') {
        this.#violation(
          'a member with another OpLog key never becomes primary',
          `${slot.id} (key id ${slot.keyId}) is primary`,
        );
      }
    }
    const lastSeq = this.#reference.appliedSeq;
    for (const node of this.live()) {
      if (node.store.appliedSeq > lastSeq) {
        this.#violation(
          'committed state only holds logged entries',
          `${node.status().nodeId} applied ${node.store.appliedSeq} but the log ends at ${lastSeq}`,
        );
      }
      if (node.store.appliedSeq === lastSeq && digestOf(node.store.state) !== this.#digest()) {
        this.#violation(
          'caught-up nodes have equal digests',
          `${node.status().nodeId} at seq ${lastSeq} differs from the log's fold`,
        );
      }
    }
  }

  #digest(): number {
    const seq = this.#reference.appliedSeq;
    if (this.#referenceDigest?.seq !== seq) {
      this.#referenceDigest = { seq, digest: digestOf(this.#reference) };
    }
    return this.#referenceDigest.digest;
  }

  /**
   * An object read-leased (a get answered) before a failover is not removed or evicted within
   * the lease TTL after the promotion (on the new primary's monotonic clock).
   */
  #checkLeasesAfterPromotion(): void {
    if (this.leasedReads.length === 0) return;
    const entries = this.logEntries();
    // A new primary whose clock ran fast waits less than the TTL: its promotion is not checked.
    const promotions = entries.filter((e) => {
      const event = e.op === 'EPOCH' ? fromEntry(e).event : undefined;
      return event?.op === 'EPOCH' && !this.slots.some((s) => s.id === event.nodeId && s.drifted);
    });
    for (const promotion of promotions) {
      const leased = new Set(
        this.leasedReads.filter((r) => r.epoch < promotion.epoch).map((r) => r.key),
      );
      if (leased.size === 0) continue;
      const promotedAt = this.#appendedAt.get(`${promotion.epoch}/${promotion.seq}`);
      for (const entry of entries) {
        if (entry.epoch !== promotion.epoch) continue;
        const at = this.#appendedAt.get(`${entry.epoch}/${entry.seq}`);
        const since =
          at === undefined || promotedAt === undefined ? entry.ts - promotion.ts : at - promotedAt;
        if (since >= SIM_TTL_MS) continue;
        const keys = removedKeys(entry);
        const hit = keys.find((k) => leased.has(k));
        if (hit !== undefined) {
          this.#violation(
            'read leases survive a failover',
            `${entry.op} of ${hit} at seq ${entry.seq} (+${since} ms) within the TTL after the promotion of epoch ${promotion.epoch}`,
          );
        }
      }
    }
  }

  /** The end: every node caught up and equal to the log's fold; allocations never overlap. */
  checkFinal(): void {
    this.checkStep();
    for (const write of this.acked) this.#checkAcked(write);
    const lastSeq = this.#reference.appliedSeq;
    for (const node of this.live()) {
      if (node.store.appliedSeq !== lastSeq) {
        this.#violation(
          'every caught-up node sees every acknowledged write',
          `${node.status().nodeId} (${node.role}) is at ${node.store.appliedSeq}, the log at ${lastSeq}`,
        );
      }
    }
    const bySegment = new Map<string, Array<{ key: string; from: number; to: number }>>();
    for (const record of allObjects(this.#reference)) {
      for (const r of record.replicas) {
        const list = bySegment.get(r.segmentId) ?? [];
        list.push({ key: record.key, from: r.offset, to: r.offset + r.length });
        bySegment.set(r.segmentId, list);
      }
    }
    for (const [segment, ranges] of bySegment) {
      ranges.sort((a, b) => a.from - b.from);
      for (let i = 1; i < ranges.length; i++) {
        const prev = ranges[i - 1]!;
        const cur = ranges[i]!;
        if (cur.from < prev.to) {
          this.#violation(
            'allocations never overlap',
            `${prev.key} and ${cur.key} overlap on segment ${segment}`,
          );
        }
      }
    }
  }

  /**
   * Liveness: after `endFaults`, a primary serves a client within TTL + the slack; returns how
   * long it took, or -1 when the run hit the known bug below and it is tolerated.
   *
   * Known bug (NodeRuntime #stepDown): a primary that steps down while etcd is unreachable
   * cannot read the leader key (`leader()` fails and is taken as null), so it never resigns;
   * when etcd comes back before its lease deadline, its keep-alives renew the lease, and the
   * leader key stays bound to a node that is now a standby: nobody campaigns, no primary ever.
   */
  async checkLiveness(): Promise<number> {
    const started = this.sim.now();
    const probe = await this.client();
    let served = false;
    const limit = SIM_TTL_MS + LIVENESS_SLACK_MS;
    void probe.exists('liveness-probe').then(
      () => {
        served = true;
      },
      () => undefined,
    );
    await this.runUntil(() => served, limit);
    if (!served) {
      this.#violation(
        'liveness',
        `no primary served within ${limit} ms after the faults stopped (roles: ${this.live()
          .map((n) => `${n.status().nodeId}=${n.role}`)
          .join(', ')}, waited ${this.sim.now() - started} ms)`,
      );
    }
    return this.sim.now() - started;
  }

  /** Every node's machine events on one timeline, as `understudy inspect --replay` reads them. */
  recording(): string {
    return recordingText(this.slots.map((s) => s.tape));
  }

  /**
   * The client-visible contract: the history of every call (with the primary's evictions) is
   * linearizable against the model of the API, key by key.
   */
  checkHistory(): void {
    const evictions: ApiOperation[] = [];
    for (const entry of this.logEntries()) {
      if (entry.op !== 'EVICTION') continue;
      const event = fromEntry(entry).event;
      if (event.op !== 'EVICTION') continue;
      const visible = this.#evictionVisibleAt.get(entry.seq) ?? Infinity;
      // Invoked when the primary handed the entry to its writer (it decided then), returned
      // when a serving primary's state first held it; each its own caller (-seq) in reports.
      const decided = this.#appendedSimAt.get(`${entry.epoch}/${entry.seq}`) ?? 0;
      for (const key of event.keys) {
        evictions.push({
          client: -entry.seq,
          call: decided,
          return: visible,
          input: { op: 'evict', key },
          output: visible === Infinity ? undefined : { ok: true },
        });
      }
    }
    const ops = this.checkedOps();
    const failures = checkHistory([...ops, ...evictions]);
    if (failures.length > 0) this.#violation('linearizable', formatFailures(failures));
  }

  /**
   * The client calls checked for linearizability: every one but the reads during which a node
   * whose clock ran beyond the margin answered a read ({@link SimWorld.drift}).
   */
  checkedOps(): ApiOperation[] {
    const tainted = this.#driftedReadsAt;
    return this.history.ops.filter(
      (op) =>
        (op.input.op !== 'get' && op.input.op !== 'exists') ||
        !tainted.some((t) => t >= op.call && t <= op.return),
    );
  }

  formatTrace(): string {
    return this.trace.map((e) => `  t=${e.t} ${e.node} [${e.state}] ${e.event}`).join('\n');
  }

  /** Stops every node and client. */
  async dispose(): Promise<void> {
    for (const client of this.#clients) await client.close();
    for (const slot of this.slots) {
      slot.clock.kill();
      slot.crashed = true;
      slot.runtime?.actor.stop();
      await slot.elector?.close();
    }
  }
}

const digests = new WeakMap<MetadataState, number>();

/** `stateDigest`, once per frozen state. */
function digestOf(state: MetadataState): number {
  let digest = digests.get(state);
  if (digest === undefined) {
    digest = stateDigest(state);
    digests.set(state, digest);
  }
  return digest;
}

function removedKeys(entry: OpLogEntry): string[] {
  if (entry.op === 'REMOVE') return [entry.key];
  if (entry.op !== 'EVICTION') return [];
  const event = fromEntry(entry).event;
  return event.op === 'EVICTION' ? [...event.keys] : [];
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// ---- broken variants (the checker must catch each) ----------------------------------------

/**
 * Broken variant (a), "append without the expected sequence": a stream that stores every
 * message at its end, whatever stream seq the writer expected and whatever entry seq it
 * carries, as JetStream does for a publish without expected-last-sequence.
 */
class UnfencedLogStore extends MemoryLogStore {
  override append(_expectedLastStreamSeq: number, entries: readonly OpLogEntry[]): AppendAck {
    // The base class keeps its fields private to TypeScript only; this test double reaches
    // them on purpose to store what the real store would refuse.
    const inner = this as unknown as {
      stored: StoredMessage[];
      lastStreamSeqValue: number;
      lastEntrySeqValue: number;
      notify(): void;
    };
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined) throw new RangeError('empty append');
    const streamSeq = ++inner.lastStreamSeqValue;
    inner.lastEntrySeqValue = Math.max(inner.lastEntrySeqValue, last.seq);
    inner.stored.push({ streamSeq, entries: [...entries] });
    inner.notify();
    return { streamSeq, firstSeq: first.seq, lastSeq: last.seq };
  }
}

/**
 * Broken variant (b), "fold before the acknowledgement": a writer that acknowledges at send
 * time, so the write pipeline folds and answers before the log has acknowledged anything.
 */
function ackingAtSend(opLog: OpLog): OpLog {
  return {
    ...opLog,
    openWriter(options) {
      const inner = opLog.openWriter(options);
      let streamSeq = options.expectedLastStreamSeq;
      const writer: OpLogWriter = {
        get fenced() {
          return inner.fenced;
        },
        append(entries) {
          inner.append(entries).catch(() => undefined);
          const first = entries[0]?.seq ?? 0;
          const last = entries[entries.length - 1]?.seq ?? 0;
          return Promise.resolve({ streamSeq: ++streamSeq, firstSeq: first, lastSeq: last });
        },
        close: () => inner.close(),
      };
      return writer;
    },
  };
}

/**
 * Broken variant (c), "no lease-deadline check": the node believes its lease never ends and
 * never hears that it was lost.
 */
function withoutLeaseDeadline(elector: Elector): Elector {
  return {
    start: () => elector.start(),
    campaign: (info) => elector.campaign(info),
    leader: () => elector.leader(),
    election: (epoch, nodeId) => elector.election(epoch, nodeId),
    observe: (onChange) => elector.observe(onChange),
    leaseDeadline: () => Number.POSITIVE_INFINITY,
    onLeaseLost: () => () => undefined,
    resign: (options) => elector.resign(options),
    publishMember: (record) => elector.publishMember(record),
    members: () => elector.members(),
    close: () => elector.close(),
  };
}
