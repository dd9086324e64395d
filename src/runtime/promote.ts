import { toEntry } from '../domain/eventCodec.ts';
import { fold } from '../domain/fold.ts';
import type { LoggedEvent } from '../domain/types.ts';
import type { Elector } from '../ports/elector.ts';
import type { CommittedStore } from './committedStore.ts';
import type { NodeRuntimeDeps } from './nodeRuntimeConfig.ts';
import type { PrimaryTerm } from './primaryTerm.ts';
import type { ReadLeases } from './readLeases.ts';

/** The `campaign` actor: takes a new lease when the last one lapsed, then campaigns. */
export async function campaign(
  deps: Pick<NodeRuntimeDeps, 'elector' | 'clock' | 'nodeId' | 'address'>,
): ReturnType<Elector['campaign']> {
  const { elector, clock } = deps;
  if (clock.monotonicNow() >= elector.leaseDeadline()) await elector.start();
  return elector.campaign({ nodeId: deps.nodeId, address: deps.address });
}

/**
 * The `promote` actor: drains the log into `store`, opens the writer (kept in `term`) and
 * appends the `EPOCH` fence of `epoch`; every object counts as read-leased afterwards.
 */
export async function promote(
  deps: Pick<NodeRuntimeDeps, 'opLog' | 'elector' | 'clock' | 'logger' | 'nodeId'>,
  store: CommittedStore,
  leases: ReadLeases,
  term: PrimaryTerm,
  epoch: number,
): Promise<{ epoch: number; appliedSeq: number }> {
  const { opLog, elector, clock, logger } = deps;
  const bounds = await opLog.bounds();
  if (bounds.lastSeq > store.appliedSeq) {
    const follower = opLog.follow(store.appliedSeq + 1);
    try {
      for await (const batch of follower) {
        store.applyEntries(batch.entries, batch.streamSeq);
        if (store.appliedSeq >= bounds.lastSeq) break;
      }
    } finally {
      follower.close();
    }
  }
  if (clock.monotonicNow() >= elector.leaseDeadline())
    throw new Error('lease deadline passed while draining');
  const writer = opLog.openWriter({ expectedLastStreamSeq: store.lastStreamSeq });
  term.writer = writer;
  const logged: LoggedEvent = {
    seq: store.appliedSeq + 1,
    epoch,
    ts: clock.wallNow(),
    event: { op: 'EPOCH', epoch, nodeId: deps.nodeId },
  };
  const next = fold(store.state, logged);
  const ack = await writer.append([toEntry(logged)]);
  store.commit(next, ack.streamSeq);
  leases.leaseAll();
  logger.info({ event: 'fenceWritten', epoch, seq: logged.seq }, 'EPOCH fence appended');
  return { epoch, appliedSeq: store.appliedSeq };
}
