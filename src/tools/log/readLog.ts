import {
  admit,
  ElectionVerdicts,
  startingEpoch,
  type ElectionClaim,
  type ForeignEntry,
} from '../../domain/log/admission.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import { fromEntry } from '../../domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../domain/model/types.ts';
import type { OpLog } from '../../ports/opLog.ts';

export interface ReadLogOptions {
  readonly fromSeq?: number;
  /** The last entry wanted (default: the log's end as it is now). */
  readonly toSeq?: number;
  /**
   * Whether an `EPOCH` fence's claim is a real election (e.g. asked of etcd with
   * `readElection`). Without it every fence counts at its word: only the epoch rule applies.
   */
  readonly elected?: (claim: ElectionClaim) => Promise<boolean>;
  /** Told of every entry left out because no elected primary wrote it, with its message. */
  readonly onForeign?: (foreign: ForeignEntry, streamSeq: number) => void;
}

/**
 * Reads the log's entries `fromSeq..toSeq` in seq order: the entries of the elected primaries
 * only, as a node folds them (domain/log/admission.ts). Messages that do not decode are passed
 * over. For tests and the demo; a node follows the log instead.
 */
export async function readLog(opLog: OpLog, options: ReadLogOptions = {}): Promise<OpLogEntry[]> {
  const fromSeq = options.fromSeq ?? 1;
  const bounds = await opLog.bounds();
  const last = options.toSeq ?? Number.POSITIVE_INFINITY;
  const entries: OpLogEntry[] = [];
  if (bounds.lastSeq < fromSeq) return entries;
  const verdicts = new ElectionVerdicts();
  /** The current epoch, from the first entry read on (see startingEpoch). */
  let epoch: number | undefined;
  let appliedSeq = 0;
  const follower = opLog.follow(Math.max(1, bounds.firstSeq));
  try {
    for await (const batch of follower) {
      const fresh = new Map<LoggedEvent, OpLogEntry>();
      for (const entry of batch.entries) {
        if (entry.seq > appliedSeq) fresh.set(fromEntry(entry), entry);
      }
      for (const logged of fresh.keys()) {
        epoch ??= startingEpoch(logged);
        const { event } = logged;
        if (event.op !== 'EPOCH' || event.epoch <= epoch) continue;
        const claim = { epoch: event.epoch, nodeId: event.nodeId };
        if (!verdicts.has(claim)) verdicts.set(claim, (await options.elected?.(claim)) ?? true);
      }
      const { admitted, foreign } = admit(epoch ?? 0, [...fresh.keys()], verdicts.elected);
      for (const f of foreign) options.onForeign?.(f, batch.streamSeq);
      for (const logged of admitted) {
        if (logged.event.op === 'EPOCH') epoch = logged.event.epoch;
        appliedSeq = logged.seq;
        const entry = fresh.get(logged);
        if (entry !== undefined && entry.seq >= fromSeq && entry.seq <= last) entries.push(entry);
      }
      if (batch.streamSeq >= bounds.lastStreamSeq || appliedSeq >= last) break;
    }
  } finally {
    follower.close();
  }
  return entries;
}
