import { Etcd3 } from 'etcd3';
import { readElection } from '../../adapters/etcd/etcdElection.ts';
import { fromEntry } from '../../domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../domain/model/types.ts';
import { readLog, type ReadLogOptions } from '../log/logReader.ts';
import { natsLogSource } from '../log/logSource.ts';

/**
 * Reads a cluster's whole OpLog back from NATS (as `understudy export` reads it) and decodes
 * the elected primaries' entries (as a node folds them). With `etcd` (its endpoints), each EPOCH
 * fence is checked against the election records (as a node checks it); without, a fence is
 * judged by the log (see `ReadOptions.elected` in logReader.ts).
 */
export async function readLoggedEvents(
  natsUrl: string,
  cluster: string,
  options: {
    readonly etcd?: readonly string[];
    readonly onSkipped?: ReadLogOptions['onSkipped'];
    /** The cluster's OpLog key: messages without its signature are no part of the log. */
    readonly signingKey?: Uint8Array;
  } = {},
): Promise<LoggedEvent[]> {
  const source = await natsLogSource({
    cluster,
    servers: [natsUrl],
    security: {},
    signingKey: options.signingKey,
  });
  const etcd = options.etcd === undefined ? undefined : new Etcd3({ hosts: [...options.etcd] });
  try {
    const entries = await readLog(source, {
      ...(etcd === undefined
        ? {}
        : {
            elected: async (claim) =>
              (await readElection(etcd, cluster, claim.epoch, claim.nodeId, 5000)).kind ===
              'elected',
          }),
      ...(options.onSkipped === undefined ? {} : { onSkipped: options.onSkipped }),
    });
    return entries.map(fromEntry);
  } finally {
    etcd?.close();
    await source.close();
  }
}
