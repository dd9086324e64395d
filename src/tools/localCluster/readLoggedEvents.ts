import { connect } from '@nats-io/transport-node';
import { Etcd3 } from 'etcd3';
import { readElection } from '../../adapters/etcd/etcdElection.ts';
import { createNatsOpLog } from '../../adapters/nats/natsOpLog.ts';
import { fromEntry } from '../../domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../domain/model/types.ts';
import { readLog, type ReadLogOptions } from '../log/readLog.ts';

/**
 * Reads a cluster's whole OpLog back from NATS and decodes the elected primaries' entries (as a
 * node folds them). With `etcd` (its endpoints), each EPOCH fence is checked against the election
 * records (as a node checks it); without, fences count at their word.
 */
export async function readLoggedEvents(
  natsUrl: string,
  cluster: string,
  options: {
    readonly etcd?: readonly string[];
    readonly onForeign?: ReadLogOptions['onForeign'];
    /** The cluster's OpLog key: messages without its signature are no part of the log. */
    readonly signingKey?: Uint8Array;
  } = {},
): Promise<LoggedEvent[]> {
  const nc = await connect({ servers: natsUrl });
  const etcd = options.etcd === undefined ? undefined : new Etcd3({ hosts: [...options.etcd] });
  try {
    const opLog = await createNatsOpLog({
      nc,
      cluster,
      ...(options.signingKey === undefined ? {} : { signingKey: options.signingKey }),
    });
    const entries = await readLog(opLog, {
      ...(etcd === undefined
        ? {}
        : {
            elected: async (claim) =>
              (await readElection(etcd, cluster, claim.epoch, claim.nodeId, 5000)).kind ===
              'elected',
          }),
      ...(options.onForeign === undefined ? {} : { onForeign: options.onForeign }),
    });
    await opLog.close();
    return entries.map(fromEntry);
  } finally {
    etcd?.close();
    await nc.close();
  }
}
