/**
 * Writing checkpoints: the {@link Checkpointer} that writes them when due on the chosen node,
 * verifies each by reading it back before publishing it, and trims the stream below them.
 */
import type { CheckpointInfo, CheckpointStore } from '../../ports/checkpointStore.ts';
import type { Clock, TimerHandle } from '../../ports/clock.ts';
import type { MemberRecord } from '../../ports/elector.ts';
import type { Replication } from '../nodeDomain.ts';
import type { NodeStore } from '../state/committedStore.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps, RuntimeLogger } from '../nodeRuntimeConfig.ts';
import type { CheckpointStats } from './checkpointStats.ts';
import {
  CHECKPOINT_READ_STALL_MS,
  CheckpointReadStalledError,
  withStallDeadline,
} from './loadCheckpoint.ts';

/** When to write a checkpoint and how many to keep. */
export interface CheckpointSchedule {
  /** A checkpoint is due once this many entries were applied since the newest one. */
  readonly intervalEntries: number;
  /** ...or once the newest one is this old (ms) and entries were applied since. */
  readonly intervalMs: number;
  /** Checkpoints kept; the stream is trimmed below the oldest of them. */
  readonly keep: number;
  /** How often a node checks whether a checkpoint is due (ms). */
  readonly checkMs: number;
}

export interface CheckpointerOptions {
  readonly nodeId: string;
  readonly store: CheckpointStore;
  readonly committed: NodeStore;
  /** The domain's checkpoint codec (frames, read-back) and record counts. */
  readonly replication: Pick<
    Replication<NodeStore['state']>,
    'checkpointFrames' | 'checkCheckpoint' | 'counts'
  >;
  readonly opLog: NodeRuntimeDeps['opLog'];
  readonly clock: Clock;
  readonly logger: RuntimeLogger;
  readonly schedule: CheckpointSchedule;
  readonly stats: CheckpointStats;
  /** This node's role now, its verification health and the log's last entry as it saw it. */
  readonly role: () => string;
  readonly healthy: () => boolean;
  readonly logLastSeq: () => number;
  /** The cluster's member records (writer choice). */
  readonly members: () => Promise<MemberRecord[]>;
  readonly maxLagForPromotion: number;
  /** A member record older than this is not counted (ms). */
  readonly memberStaleMs: number;
}

/**
 * The standby chosen to write checkpoints: among the standbys whose member record is fresh and
 * was within `maxLag` of the log's end when it was published, the one with the smallest node id;
 * undefined when there is none (then the primary writes). The log's end then is estimated from
 * `logLastSeq` now less what the log grew since at `logPerMs` entries a ms: a record is up to a
 * publish interval old (1 s), and at 6,000 writes/s a standby in step was always "6,000 behind"
 * by its record, so the primary wrote every checkpoint on its own main loop. Every node
 * computes the same choice from the same records; a moment of disagreement makes two nodes
 * write, which is harmless (different names, same state at each seq), or none until the next
 * check.
 */
export function chooseCheckpointWriter(
  members: readonly MemberRecord[],
  logLastSeq: number,
  now: number,
  maxLag: number,
  staleMs: number,
  logPerMs = 0,
): string | undefined {
  let chosen: string | undefined;
  for (const m of members) {
    const age = now - m.updatedAt;
    if (m.role !== 'standby' || age > staleMs) continue;
    if (logLastSeq - Math.max(0, age) * logPerMs - m.appliedSeq > maxLag) continue;
    if (chosen === undefined || m.nodeId < chosen) chosen = m.nodeId;
  }
  return chosen;
}

/**
 * Writes checkpoints when they are due and this node is the writer (the chosen standby; the
 * primary when no standby qualifies or the newest checkpoint is twice the time interval old),
 * reads each back and checks its digest before publishing it, then trims the stream below the
 * oldest of the newest `keep` checkpoints and removes older ones and what dead writers left.
 */
export class Checkpointer {
  #timer: TimerHandle | undefined;
  #running: Promise<unknown> | undefined;
  #stopped = false;
  /** Wall time of start(): the age of "no checkpoint yet" is counted from it. */
  #startedAt = 0;
  /** The log's end at the previous check (monotonic ms): how fast the log grows. */
  #lastLog: { readonly at: number; readonly seq: number } | undefined;

  constructor(private readonly options: CheckpointerOptions) {}

  start(): void {
    this.#stopped = false;
    this.#startedAt = this.options.clock.wallNow();
    this.#timer?.clear();
    this.#arm();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.clear();
    await this.#running?.catch(() => undefined);
  }

  #arm(): void {
    if (this.#stopped) return;
    this.#timer = this.options.clock.setTimeout(() => {
      this.#running = this.#tick().finally(() => this.#arm());
    }, this.options.schedule.checkMs);
  }

  async #tick(): Promise<void> {
    const { options } = this;
    try {
      const role = options.role();
      if (role !== 'standby' && role !== 'primary') return;
      const logPerMs = this.#logRate();
      const listed = await options.store.list();
      const newest = listed[0];
      if (newest !== undefined) options.stats.newest = newest;
      const applied = options.committed.appliedSeq;
      const since = applied - (newest?.appliedSeq ?? 0);
      if (since <= 0) return;
      const age = options.clock.wallNow() - (newest?.createdAt ?? this.#startedAt);
      const { intervalEntries, intervalMs } = options.schedule;
      if (since < intervalEntries && age < intervalMs) return;
      const overdue = age >= 2 * intervalMs;
      const writer = chooseCheckpointWriter(
        await options.members(),
        options.logLastSeq(),
        options.clock.wallNow(),
        options.maxLagForPromotion,
        options.memberStaleMs,
        logPerMs,
      );
      const mine =
        role === 'standby'
          ? writer === options.nodeId && options.healthy()
          : writer === undefined || overdue;
      if (mine) await this.writeNow();
    } catch (err) {
      options.logger.warn(
        { event: 'checkpointCheckFailed', err: String(err) },
        'checkpoint check failed',
      );
    }
  }

  /** Entries a ms the log grew by since the previous check (0 at the first). */
  #logRate(): number {
    const now = { at: this.options.clock.monotonicNow(), seq: this.options.logLastSeq() };
    const last = this.#lastLog;
    this.#lastLog = now;
    if (last === undefined || now.at <= last.at) return 0;
    return Math.max(0, now.seq - last.seq) / (now.at - last.at);
  }

  /**
   * Writes a checkpoint of the committed state now: stages it, reads it back and checks it,
   * publishes it, then applies retention. Rejects (counted in `failed`) when any step fails;
   * nothing half written is ever listed.
   */
  async writeNow(): Promise<CheckpointInfo> {
    const { options } = this;
    const { stats, logger, clock } = options;
    const state = options.committed.state;
    // The message holding the state's last entry, not a foreign or undecodable one after it.
    const lastStreamSeq = options.committed.entryStreamSeq;
    const started = clock.monotonicNow();
    try {
      let digest: number | undefined;
      const staged = await options.store.write(
        options.replication.checkpointFrames(state, (d) => {
          digest = d;
        }),
      );
      if (digest === undefined) throw new Error('the checkpoint frames were not all written');
      const claim = { appliedSeq: state.appliedSeq, stateDigest: digest };
      const stagedName = `staged checkpoint at seq ${state.appliedSeq}`;
      try {
        // The read-back stalls as a cold start's read can (an object store read that never
        // ends): given up after the same deadline, so a write never holds its caller for ever.
        await options.replication.checkCheckpoint(
          withStallDeadline(staged.read(), stagedName, clock, CHECKPOINT_READ_STALL_MS),
          claim,
        );
      } catch (err) {
        if (!(err instanceof CheckpointReadStalledError)) {
          stats.corrupt++;
          stats.lastCorrupt = `${stagedName}: ${String(err)}`;
        }
        await staged.discard().catch(() => undefined);
        throw err;
      }
      const counts = options.replication.counts(state);
      const info = await staged.publish({
        appliedSeq: state.appliedSeq,
        lastStreamSeq,
        stateDigest: digest,
        epoch: state.epoch,
        objectCount: counts.objects,
        sessionCount: counts.sessions,
        writer: options.nodeId,
      });
      stats.written++;
      stats.lastWriteMs = clock.monotonicNow() - started;
      stats.lastWriteBytes = info.bytes;
      stats.newest = info;
      logger.info(
        {
          event: 'checkpointWritten',
          checkpoint: info.name,
          appliedSeq: info.appliedSeq,
          bytes: info.bytes,
          tookMs: stats.lastWriteMs,
        },
        `checkpoint ${info.name} written and verified`,
      );
      await this.#retain();
      return info;
    } catch (err) {
      stats.failed++;
      logger.warn(
        { event: 'checkpointFailed', appliedSeq: state.appliedSeq, err: String(err) },
        'checkpoint write failed',
      );
      throw err;
    }
  }

  /**
   * Trims the stream below the oldest of the newest `keep` checkpoints (keeping the message
   * that holds its last entry) and removes the checkpoints older than those.
   */
  async #retain(): Promise<void> {
    const { store, opLog, schedule, logger } = this.options;
    const listed = await store.list();
    const kept = listed.slice(0, Math.max(1, schedule.keep));
    const oldest = kept[kept.length - 1];
    if (oldest !== undefined && oldest.lastStreamSeq > 1 && opLog.trimThrough !== undefined) {
      await opLog.trimThrough(oldest.lastStreamSeq - 1);
      logger.info(
        {
          event: 'streamTrimmed',
          throughStreamSeq: oldest.lastStreamSeq - 1,
          checkpoint: oldest.name,
        },
        `stream trimmed below checkpoint ${oldest.name}`,
      );
    }
    for (const old of listed.slice(kept.length)) await store.remove(old.name);
    await store.removeLeftovers(10 * 60_000);
  }
}

/** The checkpoint settings of a runtime config. */
export function checkpointSchedule(config: NodeRuntimeConfig): CheckpointSchedule {
  return {
    intervalEntries: config.checkpointIntervalEntries,
    intervalMs: config.checkpointIntervalMs,
    keep: config.checkpointKeep,
    checkMs: config.checkpointCheckMs,
  };
}
