/**
 * Checkpoints at run time: restoring a node's state from the newest valid checkpoint (cold
 * start, and full sync when no primary answers), failing closed when neither the stream nor a
 * checkpoint reaches back far enough, and the {@link Checkpointer} that writes them, verifies
 * them and trims the stream below them.
 */
import { checkpointFrames, CheckpointReader } from '../domain/snapshot/checkpoint.ts';
import type { MetadataState } from '../domain/model/types.ts';
import type { CheckpointInfo, CheckpointStore } from '../ports/checkpointStore.ts';
import type { Clock, TimerHandle } from '../ports/clock.ts';
import type { MemberRecord } from '../ports/elector.ts';
import type { LogBounds } from '../ports/opLog.ts';
import type { CommittedStore } from './state/committedStore.ts';
import type { StreamTailLost } from './streamTail.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps, RuntimeLogger } from './nodeRuntimeConfig.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/**
 * The node will not start (or resync) with the state it could get: the stream no longer holds
 * the entries it needs and no checkpoint (and no primary) covers them. Retryable: the node
 * tries again, and an operator can restore a checkpoint meanwhile.
 */
export class FailClosedError extends UnderstudyError {
  override readonly name: string = 'FailClosedError';
  readonly code: string = 'FAIL_CLOSED';
  override readonly retryable = true;
  constructor(
    /** Why, in words an operator can act on. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`failed closed: ${reason}`, options);
  }
}

/** What the checkpoint machinery did; `/status`, `/metrics` and the logs show it. */
export interface CheckpointStats {
  /** Checkpoints this node wrote and published. */
  written: number;
  /** Writes that failed (store error, or the read-back did not match). */
  failed: number;
  /** Checkpoints found corrupt while loading or verifying. */
  corrupt: number;
  /** The last corrupt checkpoint and what was wrong with it. */
  lastCorrupt: string | undefined;
  /** Time the last write took, from freezing the state to publishing (ms). */
  lastWriteMs: number;
  /** Size of the last checkpoint this node wrote (bytes). */
  lastWriteBytes: number;
  /** The newest checkpoint this node knows of (listed, written or loaded). */
  newest: CheckpointInfo | undefined;
  /** The checkpoint this node started from, if any. */
  loadedFrom: string | undefined;
  /** Why this node refuses to become eligible; undefined when it does not. */
  failClosed: string | undefined;
  /** Set while it refuses because a checkpoint is past the stream's end (see streamTail.ts). */
  streamTailLost: StreamTailLost | undefined;
}

export function emptyCheckpointStats(): CheckpointStats {
  return {
    written: 0,
    failed: 0,
    corrupt: 0,
    lastCorrupt: undefined,
    lastWriteMs: 0,
    lastWriteBytes: 0,
    newest: undefined,
    loadedFrom: undefined,
    failClosed: undefined,
    streamTailLost: undefined,
  };
}

/**
 * How long a checkpoint read may deliver nothing before it is given up (ms): a read of the
 * object store that stops delivering (seen once on nats-server 2.9 at 1M objects: every chunk
 * sent, the read never ended) must not hold a cold start for ever while an older checkpoint
 * would do.
 */
export const CHECKPOINT_READ_STALL_MS = 30_000;

/** A checkpoint read delivered nothing for {@link CHECKPOINT_READ_STALL_MS}. */
export class CheckpointReadStalledError extends UnderstudyError {
  override readonly name = 'CheckpointReadStalledError';
  readonly code = 'CHECKPOINT_READ_STALLED';
  constructor(
    readonly checkpoint: string,
    readonly stalledMs: number,
  ) {
    super(`reading checkpoint ${checkpoint} delivered nothing for ${stalledMs} ms`);
  }
}

/**
 * Reads a listed checkpoint and rebuilds its state, checking every chunk CRC and the digest.
 * Throws {@link CheckpointReadStalledError} when the read stalls for `stallMs`.
 */
export async function loadCheckpoint(
  store: CheckpointStore,
  info: CheckpointInfo,
  clock: Clock,
  stallMs = CHECKPOINT_READ_STALL_MS,
): Promise<MetadataState> {
  return readBack(withStallDeadline(store.read(info.name), info.name, clock, stallMs), info);
}

/** `pieces`, failing with {@link CheckpointReadStalledError} when one takes over `stallMs`. */
async function* withStallDeadline(
  pieces: AsyncIterable<Uint8Array>,
  name: string,
  clock: Clock,
  stallMs: number,
): AsyncIterable<Uint8Array> {
  const iterator = pieces[Symbol.asyncIterator]();
  for (;;) {
    let timer: TimerHandle | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(
        () => reject(new CheckpointReadStalledError(name, stallMs)),
        stallMs,
      );
    });
    let next: IteratorResult<Uint8Array>;
    try {
      next = await Promise.race([iterator.next(), stalled]);
    } catch (err) {
      // The stalled read stays pending; asking it to end is all that can be done.
      if (err instanceof CheckpointReadStalledError)
        void iterator.return?.().catch(() => undefined);
      throw err;
    } finally {
      timer?.clear();
    }
    if (next.done === true) return;
    yield next.value;
  }
}

async function readBack(
  pieces: AsyncIterable<Uint8Array>,
  claim: { readonly appliedSeq: number; readonly stateDigest: number },
): Promise<MetadataState> {
  const reader = new CheckpointReader(claim);
  for await (const piece of pieces) reader.add(piece);
  return reader.finish();
}

/**
 * Whether following the stream from entry S+1 after checkpoint `info` misses nothing: the
 * stream holds S+1 (or nothing after S), or it is empty and was last written no later than
 * the message holding S.
 */
export function streamContinues(bounds: LogBounds, info: CheckpointInfo): boolean {
  if (bounds.firstSeq === 0) return bounds.lastStreamSeq <= info.lastStreamSeq;
  return bounds.firstSeq <= info.appliedSeq + 1 && bounds.lastSeq >= info.appliedSeq;
}

/** The stream holds every entry from 1 (or was never written): folding it from 1 loses nothing. */
function streamIsWhole(bounds: LogBounds): boolean {
  return bounds.firstSeq === 1 || (bounds.firstSeq === 0 && bounds.lastStreamSeq === 0);
}

/** How a state was restored without a primary. */
export type RestoredFrom =
  { readonly kind: 'checkpoint'; readonly checkpoint: CheckpointInfo } | { readonly kind: 'log' };

/**
 * Restores `store` from scratch without a primary: from the newest checkpoint the stream
 * continues (each one's chunk CRCs and digest checked; a corrupt one is logged, counted and the
 * next older one tried), else from the empty state when the stream holds every entry from 1.
 * Throws {@link FailClosedError} saying why when neither works; `store` is then unchanged.
 */
export async function restoreWithoutPrimary(
  deps: Pick<NodeRuntimeDeps, 'opLog' | 'checkpoints' | 'logger' | 'clock'>,
  store: CommittedStore,
  stats: CheckpointStats,
): Promise<RestoredFrom> {
  const { opLog, checkpoints, logger, clock } = deps;
  const bounds = await opLog.bounds();
  const listed = checkpoints === undefined ? [] : await checkpoints.list();
  const skipped: string[] = [];
  for (const info of listed) {
    if (!streamContinues(bounds, info)) {
      skipped.push(`${info.name} (the stream does not continue it)`);
      continue;
    }
    try {
      const state = await loadCheckpoint(checkpoints as CheckpointStore, info, clock);
      // An emptied stream: its real last sequence is where a writer must fence on.
      const lastStreamSeq = bounds.firstSeq === 0 ? bounds.lastStreamSeq : info.lastStreamSeq;
      store.reset(state, lastStreamSeq);
      stats.loadedFrom = info.name;
      stats.newest ??= info;
      logger.info(
        {
          event: 'checkpointLoaded',
          checkpoint: info.name,
          appliedSeq: info.appliedSeq,
          objects: state.objectCount,
          sessions: state.sessionCount,
        },
        `state restored from checkpoint ${info.name} at seq ${info.appliedSeq}`,
      );
      return { kind: 'checkpoint', checkpoint: info };
    } catch (err) {
      if (err instanceof CheckpointReadStalledError) {
        skipped.push(`${info.name} (unreadable: ${err.message})`);
        logger.error(
          { event: 'checkpointUnreadable', checkpoint: info.name, err: err.message },
          `checkpoint ${info.name} cannot be read; trying an older one`,
        );
        continue;
      }
      stats.corrupt++;
      stats.lastCorrupt = `${info.name}: ${String(err)}`;
      skipped.push(`${info.name} (corrupt: ${String(err)})`);
      logger.error(
        { event: 'checkpointCorrupt', checkpoint: info.name, err: String(err) },
        `checkpoint ${info.name} is corrupt; trying an older one`,
      );
    }
  }
  if (streamIsWhole(bounds)) {
    store.reset();
    return { kind: 'log' };
  }
  const stream =
    bounds.firstSeq === 0
      ? `the stream holds no entries (${bounds.lastStreamSeq} messages were written, then trimmed)`
      : `the stream starts at entry ${bounds.firstSeq}`;
  const tried =
    listed.length === 0
      ? 'there is no checkpoint'
      : `no checkpoint continues it: ${skipped.join('; ')}`;
  throw new FailClosedError(`${stream} and ${tried}`);
}

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
  readonly committed: CommittedStore;
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
 * within `maxLag` of the log's end, the one with the smallest node id; undefined when there is
 * none (then the primary writes). Every node computes the same choice from the same records; a
 * moment of disagreement makes two nodes write, which is harmless (different names, same state
 * at each seq).
 */
export function chooseCheckpointWriter(
  members: readonly MemberRecord[],
  logLastSeq: number,
  now: number,
  maxLag: number,
  staleMs: number,
): string | undefined {
  let chosen: string | undefined;
  for (const m of members) {
    if (m.role !== 'standby' || now - m.updatedAt > staleMs) continue;
    if (logLastSeq - m.appliedSeq > maxLag) continue;
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
        checkpointFrames(state, undefined, (d) => {
          digest = d;
        }),
      );
      if (digest === undefined) throw new Error('the checkpoint frames were not all written');
      const claim = { appliedSeq: state.appliedSeq, stateDigest: digest };
      const stagedName = `staged checkpoint at seq ${state.appliedSeq}`;
      try {
        // The read-back stalls as a cold start's read can (an object store read that never
        // ends): given up after the same deadline, so a write never holds its caller for ever.
        await readBack(
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
      const info = await staged.publish({
        appliedSeq: state.appliedSeq,
        lastStreamSeq,
        stateDigest: digest,
        epoch: state.epoch,
        objectCount: state.objectCount,
        sessionCount: state.sessionCount,
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
