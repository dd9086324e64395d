import { admit, startingEpoch } from '../../domain/log/admission.ts';
import { CorruptEntryError } from './exportFormat.ts';
import type { LogItem } from './logItem.ts';

type EntryItem = Extract<LogItem, { kind: 'entry' }>;

/**
 * The items of a log source with the entries no elected primary wrote marked `foreign`, as a
 * node tells them (domain/log/admission.ts), for `export` and `replay`. These commands do not ask
 * etcd, so a fence is judged by the log instead: it counts when the entry after it is stamped
 * with its epoch or is a higher fence (or when it is the last entry read). That tells a forged
 * fence from a real one unless the forger also wrote entries of its epoch after it. After a
 * checkpoint (a `base` item) the current epoch is the checkpoint's.
 */
export async function* admitItems(items: AsyncIterable<LogItem>): AsyncIterable<LogItem> {
  /** The current epoch; for a read that starts after seq 1, that of its first entry. */
  let epoch: number | undefined;
  /** A fence that counts once the entry after it confirms it. */
  let pending: EntryItem | undefined;
  const foreign = (item: EntryItem, why: string): LogItem => ({
    kind: 'foreign',
    entry: item.entry,
    logged: item.logged,
    error: new CorruptEntryError(item.position, `foreign entry (no elected primary's): ${why}`),
  });
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
    const [rejected] = admit(epoch, [logged], () => true).foreign;
    if (rejected !== undefined) yield foreign(item, rejected.why);
    else if (logged.event.op === 'EPOCH') pending = item;
    else yield item;
  }
  if (pending !== undefined) yield pending;
}
