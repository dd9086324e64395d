import type { OpLogEntry } from '../domain/entry.ts';
import type { OpLog } from '../ports/opLog.ts';

/**
 * Reads the entries `fromSeq..toSeq` (default: to the log's end as it is now) in seq order.
 * For replay, export, tests and the demo; a node follows the log instead.
 */
export async function readLog(opLog: OpLog, fromSeq = 1, toSeq?: number): Promise<OpLogEntry[]> {
  const last = toSeq ?? (await opLog.bounds()).lastSeq;
  const entries: OpLogEntry[] = [];
  if (last < fromSeq) return entries;
  const follower = opLog.follow(fromSeq);
  try {
    for await (const batch of follower) {
      for (const entry of batch.entries) {
        if (entry.seq >= fromSeq && entry.seq <= last) entries.push(entry);
      }
      if ((entries[entries.length - 1]?.seq ?? 0) >= last) break;
    }
  } finally {
    follower.close();
  }
  return entries;
}
