/**
 * OpLog keys in the simulation: the cluster signs its log under one key, and a member may run
 * with another (a wrong key file). The memory OpLog has no signatures; this models the part
 * that matters: a node reads only the messages written under its own key, and passes over every
 * other one as the NATS adapter does (an undecodable batch that names the key it is signed
 * under), and the cluster's recorded key id is what the real start-up check and the runtime's
 * watch (src/node/otherKeyWatch.ts) compare against.
 */
import type { ClusterKeyCheck } from '../../src/node/nodeRuntimeConfig.ts';
import { checkOplogKeyId } from '../../src/node/oplogKeyCheck.ts';
import type { LogBatch, LogFollower, OpLog } from '../../src/ports/opLog.ts';

/** The key id the simulated cluster records (and signs its log under). */
export const CLUSTER_KEY_ID = 'k-cluster';
/** The key id of a member started with a wrong key. */
export const WRONG_KEY_ID = 'k-wrong';
/** Where the cluster's key id is recorded, as the refusals name it. */
export const KEY_RECORD = 'understudy/sim/oplog-key-id';

/** Which key each entry (`epoch/seq`) was written under: the writer's, as it handed it over. */
export class EntryKeys {
  readonly #keys = new Map<string, string>();

  /** Notes that `entries` were written under `keyId` (the first writer's key stands). */
  written(
    entries: readonly { readonly epoch: number; readonly seq: number }[],
    keyId: string,
  ): void {
    for (const e of entries) {
      const key = `${e.epoch}/${e.seq}`;
      if (!this.#keys.has(key)) this.#keys.set(key, keyId);
    }
  }

  /** The key a message was signed under (its first entry's writer's; outsiders': the cluster's). */
  of(batch: LogBatch): string {
    const first = batch.entries[0];
    return first === undefined
      ? CLUSTER_KEY_ID
      : (this.#keys.get(`${first.epoch}/${first.seq}`) ?? CLUSTER_KEY_ID);
  }
}

/**
 * `opLog` as a node holding `keyId` reads it: every message signed under another key comes as
 * an undecodable batch naming that key (`signedUnder`), as the NATS adapter delivers it.
 */
export function keyedOpLog(opLog: OpLog, keyId: string, keys: EntryKeys): OpLog {
  return {
    ...opLog,
    follow: (fromSeq, options) => {
      const inner = opLog.follow(fromSeq, options);
      const follower: LogFollower = {
        close: () => inner.close(),
        async *[Symbol.asyncIterator]() {
          for await (const batch of inner) {
            const signedUnder = keys.of(batch);
            if (batch.undecodable !== undefined || signedUnder === keyId) yield batch;
            else {
              yield {
                streamSeq: batch.streamSeq,
                entries: [],
                undecodable: `signed under key id ${signedUnder}, not this node's ${keyId}`,
                signedUnder,
              };
            }
          }
        },
      };
      return follower;
    },
  };
}

/**
 * What a node holding `keyId` reads of the cluster's record (the runtime's watch); the read
 * fails while `reachable()` says etcd cannot be reached.
 */
export function clusterKeyCheck(
  cluster: string,
  keyId: string,
  reachable: () => boolean,
): ClusterKeyCheck {
  return {
    cluster,
    keyId,
    recordedAt: KEY_RECORD,
    clusterKeyId: () =>
      reachable() ? Promise.resolve(CLUSTER_KEY_ID) : Promise.reject(new Error('etcd unreachable')),
  };
}

/**
 * The start-up check of a node process (src/process/nodeProcess.ts): throws the real
 * `OplogKeyMismatchError` unless `keyId` is the cluster's recorded one.
 */
export function checkAtStart(cluster: string, keyId: string): void {
  checkOplogKeyId(cluster, keyId, CLUSTER_KEY_ID, KEY_RECORD);
}
