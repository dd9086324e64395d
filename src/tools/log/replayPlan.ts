/**
 * What a replay is asked to do (`understudy replay` flags) and the plan derived from it: fold
 * the state to a seq, or list one key's history, and the checkpoint it may start from.
 */
import { UnderstudyError } from '../../domain/model/understudyError.ts';
import type { BaseRequest } from './checkpointBase.ts';

/** What to replay. */
export interface ReplayOptions {
  /** First seq to read (default 1). Above 1 only for history (`key` without `atSeq`). */
  readonly fromSeq?: number | undefined;
  /** Last seq to read (default: the log's end). */
  readonly toSeq?: number | undefined;
  /** Fold to this seq and summarise the state there (and `key`'s record). */
  readonly atSeq?: number | undefined;
  /** Without `atSeq`: list every entry that touched this key (object key or segment id). */
  readonly key?: string | undefined;
  /** Report bad entries and go on instead of stopping at the first. */
  readonly skipBad?: boolean | undefined;
  /** Start from this checkpoint (its seq or name) instead of the newest that fits. */
  readonly checkpoint?: string | undefined;
}

/** Options that contradict each other; nothing was read. */
export class ReplayUsageError extends UnderstudyError {
  override readonly name = 'ReplayUsageError';
  readonly code = 'REPLAY_USAGE';
  constructor(message: string) {
    super(message);
  }
}

/** What a replay does, derived from its options. */
export interface ReplayPlan {
  readonly mode: 'state' | 'history';
  readonly fromSeq: number;
  /** The last seq to read (undefined: the log's end). */
  readonly readTo: number | undefined;
}

/** Checks the options and derives the plan. Throws {@link ReplayUsageError}. */
export function planReplay(options: ReplayOptions): ReplayPlan {
  const fromSeq = options.fromSeq ?? 1;
  for (const [name, value] of [
    ['--from', options.fromSeq],
    ['--to', options.toSeq],
    ['--at', options.atSeq],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new ReplayUsageError(`${name} must be a seq (an integer >= 1)`);
    }
  }
  if (options.toSeq !== undefined && options.toSeq < fromSeq) {
    throw new ReplayUsageError('--to is below --from');
  }
  if (options.atSeq !== undefined) {
    if (fromSeq > 1) {
      throw new ReplayUsageError(
        '--at folds the state from seq 1: it cannot be combined with --from (use --key alone for history from a later seq)',
      );
    }
    if (options.toSeq !== undefined && options.toSeq < options.atSeq) {
      throw new ReplayUsageError('--at is beyond --to');
    }
    return { mode: 'state', fromSeq: 1, readTo: options.atSeq };
  }
  if (options.key !== undefined) return { mode: 'history', fromSeq, readTo: options.toSeq };
  if (fromSeq > 1) {
    throw new ReplayUsageError(
      'the state needs every entry from seq 1: --from only works with --key (history)',
    );
  }
  return { mode: 'state', fromSeq: 1, readTo: options.toSeq };
}

/** The checkpoint a replay may start from (see checkpointBase.ts), for the log source. */
export function replayBase(options: ReplayOptions): BaseRequest {
  const plan = planReplay(options);
  if (plan.mode === 'state') {
    return { mode: 'state', atSeq: options.atSeq ?? options.toSeq, named: options.checkpoint };
  }
  return {
    mode: 'range',
    fromSeq: plan.fromSeq,
    what: `history of ${options.key ?? ''}`,
    named: options.checkpoint,
  };
}
