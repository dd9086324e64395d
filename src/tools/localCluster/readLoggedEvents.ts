import { Etcd3 } from 'etcd3';
import { readElection } from '../../adapters/etcd/etcdElection.ts';
import { fromEntry } from '../../domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../domain/model/types.ts';
import { readLog, type ReadLogOptions, type SkippedItem } from '../log/logReader.ts';
import { natsLogSource, StreamTrimmedError } from '../log/logSource.ts';

/** Reads of a stream trimmed under them before {@link readLoggedEvents} gives up. */
const TRIMMED_READS = 5;

export interface ReadLoggedEventsOptions {
  readonly etcd?: readonly string[];
  /** Told of every message and entry the read that succeeded passed over, in log order. */
  readonly onSkipped?: ReadLogOptions['onSkipped'];
  /** The cluster's OpLog key: messages without its signature are no part of the log. */
  readonly signingKey?: Uint8Array;
}

/**
 * Reads a cluster's whole OpLog back from NATS (as `understudy export` reads it) and decodes
 * the elected primaries' entries (as a node folds them). With `etcd` (its endpoints), each EPOCH
 * fence is checked against the election records (as a node checks it); without, a fence is
 * judged by the log (see `ReadOptions.elected` in logReader.ts). The entries begin at the
 * stream's first one (above 1 once checkpoints trimmed it). A read that a checkpoint's trim
 * passed under ({@link StreamTrimmedError}) is read again from the new first message, up to
 * {@link TRIMMED_READS} times: a checkpoint trims after writes, so it ends once they stop.
 */
export async function readLoggedEvents(
  natsUrl: string,
  cluster: string,
  options: ReadLoggedEventsOptions = {},
): Promise<LoggedEvent[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { entries, skipped } = await readOnce(natsUrl, cluster, options);
      if (options.onSkipped !== undefined) skipped.forEach(options.onSkipped);
      return entries;
    } catch (err) {
      if (!(err instanceof StreamTrimmedError) || attempt >= TRIMMED_READS) throw err;
    }
  }
}

async function readOnce(
  natsUrl: string,
  cluster: string,
  options: ReadLoggedEventsOptions,
): Promise<{ entries: LoggedEvent[]; skipped: SkippedItem[] }> {
  const source = await natsLogSource({
    cluster,
    servers: [natsUrl],
    security: {},
    signingKey: options.signingKey,
  });
  const etcd = options.etcd === undefined ? undefined : new Etcd3({ hosts: [...options.etcd] });
  const skipped: SkippedItem[] = [];
  try {
    const entries = await readLog(source, {
      ...(etcd === undefined
        ? {}
        : {
            elected: async (claim) =>
              (await readElection(etcd, cluster, claim.epoch, claim.nodeId, 5000)).kind ===
              'elected',
          }),
      onSkipped: (item) => skipped.push(item),
    });
    return { entries: entries.map(fromEntry), skipped };
  } finally {
    etcd?.close();
    await source.close();
  }
}
