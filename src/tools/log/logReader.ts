/**
 * The one log reader: what `understudy export` and `understudy replay` read, and `readLog`
 * (tests, the demo, the benches, through `readLoggedEvents`). It reads a {@link LogSource} (the
 * live stream, an export file, or an OpLog) and applies admission (domain/log/admission.ts), as
 * a node does: a message that does not decode (garbage, or unsigned under a key) is a `bad`
 * item, an entry that no elected primary wrote a `foreign` one, and only the others are `entry`
 * items. This is the only place outside the node that tells them apart.
 */
import {
  admit,
  ElectionVerdicts,
  startingEpoch,
  type ElectionClaim,
} from '../../domain/log/admission.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import type { BaseRequest } from './checkpointBase.ts';
import { CorruptEntryError } from './exportFormat.ts';
import type { LogItem, LogSource } from './logItem.ts';

type EntryItem = Extract<LogItem, { kind: 'entry' }>;

/** What a read passed over: a message or entry that does not decode, or a foreign entry. */
export type SkippedItem = Extract<LogItem, { kind: 'bad' | 'foreign' }>;

export interface ReadOptions {
  readonly fromSeq?: number | undefined;
  /** The last entry wanted (default: the log's end as it is now). */
  readonly toSeq?: number | undefined;
  /** Start from a checkpoint when one fits (see checkpointBase.ts). */
  readonly base?: BaseRequest | undefined;
  /**
   * Whether an `EPOCH` fence's claim is a real election (e.g. asked of etcd with
   * `readElection`), asked once per claim. Without it a fence is judged by the log: it counts
   * when the entry after it is stamped with its epoch or is a higher fence, or when it is the
   * last entry read. That tells a forged fence from a real one unless the forger also wrote
   * entries of its epoch after it.
   */
  readonly elected?: (claim: ElectionClaim) => Promise<boolean>;
}

/**
 * The items of `source` from `fromSeq` (default 1) to `toSeq`, in log order, with the entries
 * no elected primary wrote as `foreign` items. The current epoch is that of the first entry
 * read (0 at seq 1 or at a fence), or the checkpoint's after a `base` item.
 */
export async function* readAdmitted(
  source: LogSource,
  options: ReadOptions = {},
): AsyncIterable<LogItem> {
  const items = source.read(options.fromSeq ?? 1, options.toSeq, options.base);
  const { elected } = options;
  const verdicts = new ElectionVerdicts();
  /** The current epoch; for a read that starts after seq 1, that of its first entry. */
  let epoch: number | undefined;
  /** A fence that counts once the entry after it confirms it (without `elected`). */
  let pending: EntryItem | undefined;
  for await (const item of items) {
    if (item.kind === 'base') epoch = item.state.epoch;
    if (item.kind !== 'entry') {
      yield item;
      continue;
    }
    const { logged } = item;
    if (pending !== undefined) {
      const fence = pending.logged.event;
      const fenceEpoch = fence.op === 'EPOCH' ? fence.epoch : pending.logged.epoch;
      const next = logged.event;
      if (logged.epoch === fenceEpoch || (next.op === 'EPOCH' && next.epoch > fenceEpoch)) {
        epoch = fenceEpoch;
        yield pending;
      } else {
        yield foreign(
          pending,
          `an EPOCH ${fenceEpoch} fence the log does not continue (the entry after it, seq ${logged.seq}, has epoch ${logged.epoch})`,
        );
      }
      pending = undefined;
    }
    epoch ??= startingEpoch(logged);
    const { event } = logged;
    if (elected !== undefined && event.op === 'EPOCH' && event.epoch > epoch) {
      const claim = { epoch: event.epoch, nodeId: event.nodeId };
      if (!verdicts.has(claim)) verdicts.set(claim, await elected(claim));
    }
    const [rejected] = admit(
      epoch,
      [logged],
      elected === undefined ? () => true : verdicts.elected,
    ).foreign;
    if (rejected !== undefined) yield foreign(item, rejected.why);
    else if (event.op !== 'EPOCH') yield item;
    else if (elected === undefined) pending = item;
    else {
      epoch = event.epoch;
      yield item;
    }
  }
  if (pending !== undefined) yield pending;
}

function foreign(item: EntryItem, why: string): LogItem {
  return {
    kind: 'foreign',
    entry: item.entry,
    logged: item.logged,
    error: new CorruptEntryError(item.position, `foreign entry (no elected primary's): ${why}`),
  };
}

export interface ReadLogOptions extends ReadOptions {
  /** Told of every message and entry passed over, in log order. */
  readonly onSkipped?: (item: SkippedItem) => void;
}

/**
 * The log's entries `fromSeq..toSeq` as a node folds them: those {@link readAdmitted} admits,
 * each seq once (a later entry at or below the last one kept is a redelivery, passed over as a
 * node does). For tests, the demo and the benches; a node follows the log instead.
 */
export async function readLog(
  source: LogSource,
  options: ReadLogOptions = {},
): Promise<OpLogEntry[]> {
  const entries: OpLogEntry[] = [];
  let lastSeq = 0;
  for await (const item of readAdmitted(source, options)) {
    if (item.kind === 'bad' || item.kind === 'foreign') options.onSkipped?.(item);
    else if (item.kind === 'entry' && item.entry.seq > lastSeq) {
      entries.push(item.entry);
      lastSeq = item.entry.seq;
    }
  }
  return entries;
}
