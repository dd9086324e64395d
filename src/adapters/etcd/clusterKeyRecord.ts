// The cluster's OpLog key id in etcd: written once by the first node that starts, so every later
// node can tell at start-up whether it signs and checks the log under the cluster's key.
import type { Etcd3 } from 'etcd3';
import { DEFAULT_CALL_TIMEOUT_MS, withTimeout } from './etcdClient.ts';

/** The value recorded for a cluster whose log is not signed (its nodes have no OpLog key). */
export const NO_OPLOG_KEY = 'none';

/** The etcd key holding the cluster's OpLog key id: `/understudy/<cluster>/oplog-key-id`. */
export function oplogKeyIdKey(cluster: string): string {
  return `/understudy/${cluster}/oplog-key-id`;
}

/** What etcd holds for the cluster's OpLog key, after {@link claimOplogKeyId}. */
export interface OplogKeyRecord {
  /** The cluster's key id, or {@link NO_OPLOG_KEY} for an unsigned log. */
  readonly clusterKeyId: string;
  /** True when this call wrote it (the cluster had none recorded). */
  readonly created: boolean;
}

/**
 * Records `keyId` (a node's key id, or {@link NO_OPLOG_KEY}) as the cluster's unless one is
 * already recorded, in one transaction (nodes starting together agree on the first), and
 * returns what the cluster has. Nothing here compares them: that is the caller's decision.
 */
export async function claimOplogKeyId(
  client: Etcd3,
  cluster: string,
  keyId: string,
): Promise<OplogKeyRecord> {
  const key = oplogKeyIdKey(cluster);
  const response = await withTimeout(
    client
      .if(key, 'Create', '==', 0)
      .then(client.put(key).value(keyId))
      .else(client.get(key))
      .commit(),
    DEFAULT_CALL_TIMEOUT_MS,
    'record the OpLog key id',
  );
  if (response.succeeded) return { clusterKeyId: keyId, created: true };
  const kv = response.responses[0]?.response_range.kvs[0];
  return { clusterKeyId: kv === undefined ? keyId : kv.value.toString(), created: false };
}

/**
 * The cluster's recorded OpLog key id, or undefined when none is recorded yet. Rejects with
 * `EtcdUnavailableError` when etcd does not answer in time.
 */
export async function readOplogKeyId(client: Etcd3, cluster: string): Promise<string | undefined> {
  const value = await withTimeout(
    client.get(oplogKeyIdKey(cluster)).string(),
    DEFAULT_CALL_TIMEOUT_MS,
    'read the OpLog key id',
  );
  return value ?? undefined;
}
