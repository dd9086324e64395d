/**
 * The invariants of the failover simulation, checked as the world runs: every answer a node
 * gives is recorded and checked against the log (one writer per epoch, acknowledged writes in
 * the log, a fenced node answers nothing), the log against itself (one linear history, each
 * request applied at most once), the nodes against the log's fold after every step, the
 * leader key after every turn (leaderKeyCheck.ts), and the client history for linearizability.
 */
import type { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import type { SimClock } from '../../src/adapters/memory/simClock.ts';
import { decodeJson } from '../../src/api/wire.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { fromEntry } from '../../src/domain/log/eventCodec.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { fold } from '../../src/domain/fold/fold.ts';
import { allObjects, emptyState } from '../../src/domain/model/state.ts';
import type { MetadataState } from '../../src/domain/model/types.ts';
import type { NodeRuntime } from '../../src/node/nodeRuntime.ts';
import { checkHistory, formatFailures, type HistoryRecorder } from '../harness/history.ts';
import type { ApiOperation } from '../harness/understudyModel.ts';
import { keyOf, WRITE_OPS, type AckedWrite, type LeasedRead } from './answerRecords.ts';
import { InvariantViolation } from './invariantViolation.ts';
import { LeaderKeyCheck } from './leaderKeyCheck.ts';
import type { NodeSlot } from './nodeSlot.ts';
import { CLUSTER_KEY_ID } from './oplogKeys.ts';
import type { SimLogArchive } from './simLogArchive.ts';
import { SIM_TTL_MS } from './simSettings.ts';

/** What the checker reads of the world. */
export interface CheckedWorld {
  readonly sim: SimClock;
  readonly coord: MemoryCoordinator;
  readonly slots: readonly NodeSlot[];
  /** The whole log (see {@link SimLogArchive}). */
  readonly log: SimLogArchive;
  /** Every client call, with its answer. */
  readonly history: HistoryRecorder;
  /** Live runtimes (not crashed). */
  live(): NodeRuntime[];
  /** The readable trace, for a violation's message. */
  formatTrace(): string;
}

/** The checks of one {@link CheckedWorld}; the first violation is thrown (and kept). */
export class SimChecker {
  readonly acked: AckedWrite[] = [];
  readonly leasedReads: LeasedRead[] = [];
  /** Node that acknowledged writes per epoch. */
  readonly writerOfEpoch = new Map<number, string>();
  #reference: MetadataState = emptyState();
  #referenceDigest: { seq: number; digest: number } | undefined;
  #checkedEntries = 0;
  #fenceEpoch = 0;
  #lastEpochSeen = 0;
  /** Seq of each EVICTION entry -> when a serving primary's committed state first held it. */
  readonly #evictionVisibleAt = new Map<number, number>();
  readonly #leaderKey: LeaderKeyCheck;

  constructor(
    private readonly world: CheckedWorld,
    /** Which invariants fail a run (see `WorldOptions.checks`). */
    private readonly checks: 'all' | 'history',
    /** Writes a line of the world's trace. */
    private readonly trace: (node: string, state: string, event: string) => void,
  ) {
    this.#leaderKey = new LeaderKeyCheck(world, (invariant, message) =>
      this.violation(invariant, message),
    );
  }

  /** The epoch of the last EPOCH entry in the log. */
  get lastEpochSeen(): number {
    return this.#lastEpochSeen;
  }

  /** Invariant, checked after every turn (see {@link LeaderKeyCheck}). */
  checkLeaderKey(): void {
    this.#leaderKey.check();
  }

  /**
   * Evictions are the primary's own writes: no client call stands for them. The history gets
   * each as an operation that returns when a serving primary's committed state first holds it
   * (from then on every read sees it), noted after every turn of the simulation.
   */
  noteEvictions(): void {
    let applied = -1;
    for (const slot of this.world.slots) {
      if (!slot.crashed && slot.runtime?.role === 'primary')
        applied = Math.max(applied, slot.runtime.store.appliedSeq);
    }
    if (applied < 0) return;
    for (const entry of this.world.log.entries()) {
      if (entry.seq > applied) break;
      if (entry.op === 'EVICTION' && !this.#evictionVisibleAt.has(entry.seq))
        this.#evictionVisibleAt.set(entry.seq, this.world.sim.now());
    }
  }

  /** When a node whose clock ran beyond the margin answered a read (sim time). */
  readonly #driftedReadsAt: number[] = [];

  /**
   * Whether a read `slot` answers now in `epoch` may be stale ({@link SimFaults.drift}): its
   * clock runs slow beyond the margin, and etcd no longer holds its leader key of that epoch.
   */
  #mayBeStale(slot: NodeSlot, epoch: number): boolean {
    if (!slot.drifted || slot.clock.rate >= 1) return false;
    const leader = this.world.coord.currentLeader();
    return leader?.nodeId !== slot.id || leader.epoch !== epoch;
  }

  /** The first violation: kept, because one found inside a node's callback is thrown there. */
  #failure: InvariantViolation | undefined;

  /** Fails the run with `invariant` broken (unless only the history is checked). */
  violation(invariant: string, message: string): void {
    if (this.checks === 'history' && invariant !== 'linearizable') return;
    this.#failure ??= new InvariantViolation(invariant, `${message}\n${this.world.formatTrace()}`);
    throw this.#failure;
  }

  /** The largest epoch fenced into the log so far. */
  currentFenceEpoch(): number {
    this.#scanLog();
    return this.#fenceEpoch;
  }

  /** Records the answer `slot` gave to `op` and checks it (see the file doc). */
  recordAnswer(
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
    this.trace(slot.id, slot.runtime?.role ?? '?', `answered ${op}(${key}) epoch=${epoch}`);
    const logOp = WRITE_OPS[op];
    if (logOp !== undefined) {
      const seq = Number(answer.result?.['seq']);
      const write: AckedWrite = { node: slot.id, epoch, op: logOp, key, seq };
      this.acked.push(write);
      const writer = this.writerOfEpoch.get(epoch);
      if (writer !== undefined && writer !== slot.id) {
        this.violation(
          'one writer per epoch',
          `${slot.id} and ${writer} both acknowledged writes in epoch ${epoch}`,
        );
      }
      this.writerOfEpoch.set(epoch, slot.id);
      this.#checkAcked(write);
    } else if (op === 'get' || op === 'exists') {
      if (this.#mayBeStale(slot, epoch)) {
        this.#driftedReadsAt.push(this.world.sim.now());
        return;
      }
      if (epochAtStart < fenceAtStart) {
        this.violation(
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
    const entry = this.world.log.entries().find((e) => e.seq === write.seq);
    if (entry?.op !== write.op || entry.key !== write.key || entry.epoch > write.epoch) {
      this.violation(
        'acknowledged writes are in the log',
        `${write.node} acknowledged ${write.op}(${write.key}) at seq ${write.seq} in epoch ${write.epoch}, ` +
          `but the log holds ${entry === undefined ? 'nothing' : `${entry.op}(${entry.key}) of epoch ${entry.epoch}`} there`,
      );
    }
  }

  /** Folds new log entries into the reference state, checking the log is one linear history. */
  #scanLog(): void {
    const entries = this.world.log.entries();
    for (; this.#checkedEntries < entries.length; this.#checkedEntries++) {
      const entry = entries[this.#checkedEntries]!;
      const expected = this.#reference.appliedSeq + 1;
      if (entry.seq !== expected) {
        this.violation(
          'the log is one linear history',
          `entry #${this.#checkedEntries + 1} has seq ${entry.seq}, expected ${expected}`,
        );
      }
      if (entry.op === 'EPOCH') {
        if (entry.epoch <= this.#lastEpochSeen) {
          this.violation(
            'epochs strictly increase',
            `EPOCH ${entry.epoch} at seq ${entry.seq} after epoch ${this.#lastEpochSeen}`,
          );
        }
        this.#lastEpochSeen = entry.epoch;
        this.#fenceEpoch = entry.epoch;
      } else if (entry.epoch !== this.#lastEpochSeen) {
        this.violation(
          'one writer per epoch',
          `${entry.op}(${entry.key}) at seq ${entry.seq} has epoch ${entry.epoch} inside epoch ${this.#lastEpochSeen}`,
        );
      }
      const logged = fromEntry(entry);
      if (logged.origin !== undefined) {
        const request = `${logged.origin.sessionId}#${logged.origin.requestNo}`;
        const first = this.#requestSeqs.get(request);
        if (first !== undefined) {
          this.violation(
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

  /** The fold of the log so far (see {@link SimChecker.checkStep}). */
  get reference(): MetadataState {
    return this.#reference;
  }

  /** The invariants that hold after every step. */
  checkStep(): void {
    if (this.#failure !== undefined) throw this.#failure;
    this.#scanLog();
    this.#checkLeasesAfterPromotion();
    for (const slot of this.world.slots) {
      if (slot.keyId !== CLUSTER_KEY_ID && !slot.crashed && slot.runtime?.role === 'primary') {
        this.violation(
          'a member with another OpLog key never becomes primary',
          `${slot.id} (key id ${slot.keyId}) is primary`,
        );
      }
    }
    const lastSeq = this.#reference.appliedSeq;
    for (const node of this.world.live()) {
      if (node.store.appliedSeq > lastSeq) {
        this.violation(
          'committed state only holds logged entries',
          `${node.status().nodeId} applied ${node.store.appliedSeq} but the log ends at ${lastSeq}`,
        );
      }
      if (node.store.appliedSeq === lastSeq && digestOf(node.store.state) !== this.#digest()) {
        this.violation(
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
    const entries = this.world.log.entries();
    // A new primary whose clock ran fast waits less than the TTL: its promotion is not checked.
    const promotions = entries.filter((e) => {
      const event = e.op === 'EPOCH' ? fromEntry(e).event : undefined;
      return (
        event?.op === 'EPOCH' && !this.world.slots.some((s) => s.id === event.nodeId && s.drifted)
      );
    });
    for (const promotion of promotions) {
      const leased = new Set(
        this.leasedReads.filter((r) => r.epoch < promotion.epoch).map((r) => r.key),
      );
      if (leased.size === 0) continue;
      const promotedAt = this.world.log.appendedAt.get(`${promotion.epoch}/${promotion.seq}`);
      for (const entry of entries) {
        if (entry.epoch !== promotion.epoch) continue;
        const at = this.world.log.appendedAt.get(`${entry.epoch}/${entry.seq}`);
        const since =
          at === undefined || promotedAt === undefined ? entry.ts - promotion.ts : at - promotedAt;
        if (since >= SIM_TTL_MS) continue;
        const keys = removedKeys(entry);
        const hit = keys.find((k) => leased.has(k));
        if (hit !== undefined) {
          this.violation(
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
    for (const node of this.world.live()) {
      if (node.store.appliedSeq !== lastSeq) {
        this.violation(
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
          this.violation(
            'allocations never overlap',
            `${prev.key} and ${cur.key} overlap on segment ${segment}`,
          );
        }
      }
    }
  }

  /**
   * The client-visible contract: the history of every call (with the primary's evictions) is
   * linearizable against the model of the API, key by key.
   */
  checkHistory(): void {
    const evictions: ApiOperation[] = [];
    for (const entry of this.world.log.entries()) {
      if (entry.op !== 'EVICTION') continue;
      const event = fromEntry(entry).event;
      if (event.op !== 'EVICTION') continue;
      const visible = this.#evictionVisibleAt.get(entry.seq) ?? Infinity;
      // Invoked when the primary handed the entry to its writer (it decided then), returned
      // when a serving primary's state first held it; each its own caller (-seq) in reports.
      const decided = this.world.log.appendedSimAt.get(`${entry.epoch}/${entry.seq}`) ?? 0;
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
    if (failures.length > 0) this.violation('linearizable', formatFailures(failures));
  }

  /**
   * The client calls checked for linearizability: every one but the reads during which a node
   * whose clock ran beyond the margin answered a read ({@link SimFaults.drift}).
   */
  checkedOps(): ApiOperation[] {
    const tainted = this.#driftedReadsAt;
    return this.world.history.ops.filter(
      (op) =>
        (op.input.op !== 'get' && op.input.op !== 'exists') ||
        !tainted.some((t) => t >= op.call && t <= op.return),
    );
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
