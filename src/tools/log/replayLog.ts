/**
 * The replay engine behind `understudy replay`: folds a log source (live stream or export
 * file) to a seq and summarises the state there, or lists the history of one key, checking
 * every entry (checksums, seq continuity, that it folds) on the way.
 *
 * A state needs every entry from seq 1, or a checkpoint to start from: on a cluster whose stream
 * was trimmed below its checkpoints the source yields the checkpoint's state first (a `base`
 * item, see checkpointBase.ts) and the entries after it. `--from` above 1 only works for history
 * listing.
 */
import { produce } from 'immer';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import { fold, FoldError } from '../../domain/fold/fold.ts';
import { emptyState, getObject } from '../../domain/model/state.ts';
import type {
  LoggedEvent,
  MetadataEvent,
  MetadataState,
  ObjectRecord,
} from '../../domain/model/types.ts';
import type { CheckpointInfo } from '../../ports/checkpointStore.ts';
import { CorruptEntryError, type EntryPosition } from './exportFormat.ts';
import type { LogItem } from './logItem.ts';
import { planReplay, type ReplayOptions, type ReplayPlan } from './replayPlan.ts';
import { summarizeState, type StateSummary } from './stateSummary.ts';

/** Exit codes of `understudy replay` and `understudy export`. */
export const EXIT_CODES = {
  /** Done; with `--skip-bad`, also when bad entries were skipped (they are on stderr). */
  ok: 0,
  /** A corrupt entry (bad JSON/base64, CRC or checksum mismatch, seq gap, does not fold) or a foreign one stopped it. */
  corrupt: 1,
  /** Bad or conflicting flags. */
  usage: 2,
  /** The log cannot be read (no server, stream or file), or lacks the range asked for. */
  unavailable: 3,
  /** `export` only: the output file cannot be written. */
  output: 4,
} as const;

/** One entry of a key's history. */
export interface HistoryItem {
  readonly entry: OpLogEntry;
  readonly logged: LoggedEvent;
  /**
   * The key's record right after the entry: null when absent, undefined when unknown (the
   * replay did not start at seq 1, or an earlier entry was bad, so no state is folded).
   */
  readonly record: ObjectRecord | null | undefined;
}

/** The outcome of a replay. */
export interface ReplayResult {
  readonly plan: ReplayPlan;
  /** Every bad entry met (with `skipBad`, each was skipped; without, only the first). */
  readonly problems: readonly CorruptEntryError[];
  /** The bad entry that stopped the replay (not set with `skipBad`). */
  readonly stoppedBy: CorruptEntryError | undefined;
  /** Why the log could not give what was asked (starts after seq 1, ends before --at). */
  readonly unavailable: string | undefined;
  /** The first and last seq read (0 when none). */
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** History mode: how many entries touched the key. */
  readonly historyCount: number;
  /** State mode: the state at `atSeq` (or the end of the range). */
  readonly summary: StateSummary | undefined;
  /** State mode with a key: its record at that point (null: absent). */
  readonly keyRecord: ObjectRecord | null | undefined;
  /** The checkpoint the replay started from (undefined: from seq 1 or `fromSeq`). */
  readonly checkpoint: CheckpointInfo | undefined;
  /** What the source said about the range (where the history begins after a trim). */
  readonly notes: readonly string[];
}

/** Whether an event names `key` (as object key, segment id or evicted key). */
export function eventTouches(event: MetadataEvent, key: string): boolean {
  switch (event.op) {
    case 'MOUNT_SEGMENT':
    case 'UNMOUNT_SEGMENT':
      return event.segmentId === key;
    case 'PUT_START':
    case 'PUT_END':
    case 'PUT_REVOKE':
    case 'REMOVE':
      return event.key === key;
    case 'EVICTION':
      return event.keys.includes(key);
    case 'EPOCH':
      return false;
  }
}

function withSeq(state: MetadataState, appliedSeq: number): MetadataState {
  return produce(state, (draft) => {
    draft.appliedSeq = appliedSeq;
  });
}

/** Called as the replay goes, so long outputs stream. */
export interface ReplayHooks {
  /** Each history entry, as it is found. */
  readonly onHistory?: (item: HistoryItem) => void;
  /** Each bad entry, as it is met (before the replay stops or skips it). */
  readonly onProblem?: (error: CorruptEntryError) => void;
  /** Each note of the source (where the log begins after a trim), before any history. */
  readonly onNote?: (text: string) => void;
}

/**
 * Replays `items` as `options` asks. History entries go to `hooks.onHistory` as they are
 * found (so a long history streams). Bad entries never throw: they end up in `problems` and, without
 * `skipBad`, in `stoppedBy`. A seq that is not the previous one + 1 is a bad entry (gap or
 * reordering) unless a bad entry skipped just before explains it. Throws
 * {@link ReplayUsageError} for contradicting options, and whatever the source throws when it
 * cannot be read.
 */
export async function replayLog(
  items: AsyncIterable<LogItem>,
  options: ReplayOptions,
  hooks: ReplayHooks = {},
): Promise<ReplayResult> {
  const onHistory = hooks.onHistory ?? (() => undefined);
  const onProblem = hooks.onProblem ?? (() => undefined);
  const plan = planReplay(options);
  const key = options.key;
  const skipBad = options.skipBad === true;
  const problems: CorruptEntryError[] = [];
  let stoppedBy: CorruptEntryError | undefined;
  let unavailable: string | undefined;
  let state = emptyState();
  let folding = plan.fromSeq === 1;
  let approximate = false;
  let firstSeq = 0;
  let prevSeq: number | undefined;
  let lastTs: number | undefined;
  let skippedUnknown = false;
  let historyCount = 0;
  let checkpoint: CheckpointInfo | undefined;
  const notes: string[] = [];

  /** Records a bad entry; true when the replay must stop. */
  const bad = (error: CorruptEntryError): boolean => {
    problems.push(error);
    onProblem(error);
    if (!skipBad) {
      stoppedBy = error;
      return true;
    }
    if (plan.mode === 'history') folding = false;
    else approximate = true;
    return false;
  };

  for await (const item of items) {
    if (item.kind === 'note') {
      notes.push(item.text);
      hooks.onNote?.(item.text);
      continue;
    }
    if (item.kind === 'base') {
      // The checkpoint's state is the state at its seq: fold on from there.
      checkpoint = item.checkpoint;
      state = item.state;
      folding = true;
      prevSeq = item.checkpoint.appliedSeq;
      continue;
    }
    if (item.kind === 'foreign') {
      // No part of the log, and no loss: the state stays exact, the seq count goes on.
      problems.push(item.error);
      onProblem(item.error);
      if (!skipBad) {
        stoppedBy = item.error;
        break;
      }
      continue;
    }
    if (item.kind === 'bad') {
      if (bad(item.error)) break;
      const seq = item.error.seq;
      if (seq !== undefined && (prevSeq === undefined || seq === prevSeq + 1)) {
        prevSeq = seq;
        if (firstSeq === 0) firstSeq = seq;
      } else if (seq === undefined) skippedUnknown = true;
      continue;
    }
    const { entry, logged } = item;
    const seq = entry.seq;
    // Entries between a checkpoint and --from are folded, not listed.
    if (seq < plan.fromSeq && checkpoint === undefined) continue;
    const position: EntryPosition = item.position;
    if (prevSeq === undefined) {
      firstSeq = seq;
      if (seq !== 1) {
        if (plan.mode === 'state' && !skippedUnknown) {
          unavailable = `the log starts at seq ${seq}: the state needs every entry from seq 1`;
          break;
        }
        if (plan.mode === 'history') folding = false;
      }
    } else if (seq !== prevSeq + 1) {
      const explained = skippedUnknown && seq > prevSeq;
      if (!explained) {
        const reason =
          seq <= prevSeq
            ? `seq ${seq} after seq ${prevSeq}: out of order`
            : `seq gap: ${seq - prevSeq - 1} entries missing after seq ${prevSeq}`;
        if (bad(new CorruptEntryError(position, reason))) break;
        if (seq <= prevSeq) continue;
      }
    }
    skippedUnknown = false;
    prevSeq = seq;
    lastTs = entry.ts;
    const before = folding && key !== undefined ? getObject(state, key) : undefined;
    if (folding) {
      if (state.appliedSeq !== seq - 1) state = withSeq(state, seq - 1);
      try {
        state = fold(state, logged);
      } catch (error) {
        if (!(error instanceof FoldError)) throw error;
        const detail = error.message.replace(/^cannot fold seq \d+ \(expected \d+\): /, '');
        const onWhat = approximate ? ' (on a state that lacks skipped entries)' : '';
        const corrupt = new CorruptEntryError(position, `does not fold${onWhat}: ${detail}`, {
          cause: error,
        });
        if (bad(corrupt)) break;
        if (folding) state = withSeq(state, seq);
      }
    }
    if (firstSeq === 0) firstSeq = seq;
    if (plan.mode === 'history' && key !== undefined && seq >= plan.fromSeq) {
      const after = folding ? getObject(state, key) : undefined;
      if (eventTouches(logged.event, key) || (folding && after !== before)) {
        historyCount += 1;
        onHistory({ entry, logged, record: folding ? (after ?? null) : undefined });
      }
    }
    if (plan.readTo !== undefined && seq >= plan.readTo) break;
  }

  let summary: StateSummary | undefined;
  let keyRecord: ObjectRecord | null | undefined;
  if (plan.mode === 'state' && stoppedBy === undefined && unavailable === undefined) {
    const reached = prevSeq ?? 0;
    if (options.atSeq !== undefined && reached < options.atSeq) {
      unavailable = `the log ends at seq ${reached}, before --at ${options.atSeq}`;
    } else {
      summary = summarizeState(state, lastTs, approximate);
      if (key !== undefined) keyRecord = getObject(state, key) ?? null;
    }
  }
  return {
    plan,
    problems,
    stoppedBy,
    unavailable,
    firstSeq,
    lastSeq: prevSeq ?? 0,
    historyCount,
    summary,
    keyRecord,
    checkpoint,
    notes,
  };
}

/** The exit code of a finished replay (see {@link EXIT_CODES}). */
export function replayExitCode(result: ReplayResult): number {
  if (result.stoppedBy !== undefined) return EXIT_CODES.corrupt;
  if (result.unavailable !== undefined) return EXIT_CODES.unavailable;
  return EXIT_CODES.ok;
}
