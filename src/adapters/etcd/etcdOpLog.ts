import type { OpLog, LogFollower } from '../../ports/opLog.ts';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  EtcdUnavailableError,
  openEtcd,
  type EtcdConnectionOptions,
} from './etcdClient.ts';
import { followEtcdOpLog } from './etcdOpLogFollower.ts';
import { openEtcdOpLogWriter, type EtcdOpLogPipelining } from './etcdOpLogWriter.ts';
import { etcdStreamReads } from './etcdStream.ts';

export interface EtcdOpLogOptions {
  readonly client: EtcdConnectionOptions;
  /** Keys live under `/understudy/<cluster>/oplog/`. */
  readonly cluster: string;
  /** Bound on each etcd call; default 3000 ms. */
  readonly callTimeoutMs?: number;
  /** Default `coalesce`. */
  readonly pipelining?: EtcdOpLogPipelining;
  /**
   * Most messages one coalesced transaction carries; default 100 (etcd refuses transactions
   * of more than `--max-txn-ops`, 128 by default, operations; each carries 2 more).
   */
  readonly maxMessagesPerTxn?: number;
}

/**
 * The baseline OpLog on etcd (what Mooncake Store does): messages are stored by
 * compare-and-set transactions on a producer key, so a message is stored only right after the
 * message its writer expected. Appends are pipelined (see {@link EtcdOpLogPipelining}). The producer
 * key is paired with a writer key holding the last writer's token, so no writer can extend
 * another writer's message (even one stored at the stream seq it expected).
 */
export function createEtcdOpLog(options: EtcdOpLogOptions): OpLog {
  const { cluster } = options;
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const connection = openEtcd(options.client, callTimeoutMs);
  const { client } = connection;
  const mode = options.pipelining ?? 'coalesce';
  const maxMessagesPerTxn = options.maxMessagesPerTxn ?? 100;
  if (!(
    Number.isInteger(maxMessagesPerTxn) &&
    maxMessagesPerTxn >= 1 &&
    maxMessagesPerTxn <= 126
  )) {
    throw new RangeError(
      `maxMessagesPerTxn must be an integer in [1, 126], got ${maxMessagesPerTxn}`,
    );
  }
  const followers = new Set<LogFollower>();
  const reads = etcdStreamReads(client, cluster, callTimeoutMs);
  const writerContext = { client, cluster, callTimeoutMs, mode, maxMessagesPerTxn, reads };

  return {
    openWriter: (writerOptions) => openEtcdOpLogWriter(writerContext, writerOptions),
    follow: (fromSeq) =>
      followEtcdOpLog({ client, cluster, callTimeoutMs, reads, followers }, fromSeq),
    bounds: reads.bounds,
    close() {
      for (const follower of [...followers]) follower.close();
      if (connection.owned) client.close();
      return Promise.resolve();
    },
  };
}

export { EtcdUnavailableError };
