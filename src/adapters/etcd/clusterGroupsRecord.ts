// The cluster's group count in etcd: written once by the first node that starts, so every later
// node can tell at start-up whether it splits the keyspace as the cluster does. A node with
// another count would own other shards than its peers and serve the wrong groups' keys.
import type { Etcd3 } from 'etcd3';
import { DEFAULT_CALL_TIMEOUT_MS, withTimeout } from './etcdClient.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** The etcd key holding the cluster's group count: `/understudy/<cluster>/groups`. */
export function groupsKey(cluster: string): string {
  return `/understudy/${cluster}/groups`;
}

/** What etcd holds for the cluster's group count, after {@link claimGroupCount}. */
export interface GroupCountRecord {
  /** The cluster's group count. */
  readonly clusterGroups: number;
  /** True when this call wrote it (the cluster had none recorded). */
  readonly created: boolean;
}

/** A recorded value that is not a group count: the record was written by hand or damaged. */
export class GroupCountRecordError extends UnderstudyError {
  override readonly name = 'GroupCountRecordError';
  readonly code = 'GROUP_COUNT_RECORD';
  constructor(
    readonly key: string,
    readonly value: string,
  ) {
    super(`etcd holds ${JSON.stringify(value)} at ${key}, which is not a group count`);
  }
}

function parseCount(key: string, value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new GroupCountRecordError(key, value);
  }
  return n;
}

/**
 * Records `groups` as the cluster's group count unless one is already recorded, in one
 * transaction (nodes starting together agree on the first), and returns what the cluster has.
 * Nothing here compares them: that is the caller's decision. Rejects with
 * {@link GroupCountRecordError} when the recorded value is not a count.
 */
export async function claimGroupCount(
  client: Etcd3,
  cluster: string,
  groups: number,
): Promise<GroupCountRecord> {
  const key = groupsKey(cluster);
  const response = await withTimeout(
    client
      .if(key, 'Create', '==', 0)
      .then(client.put(key).value(String(groups)))
      .else(client.get(key))
      .commit(),
    DEFAULT_CALL_TIMEOUT_MS,
    'record the group count',
  );
  if (response.succeeded) return { clusterGroups: groups, created: true };
  const kv = response.responses[0]?.response_range.kvs[0];
  return {
    clusterGroups: kv === undefined ? groups : parseCount(key, kv.value.toString()),
    created: false,
  };
}

/**
 * The cluster's recorded group count, or undefined when none is recorded yet (a cluster created
 * before groups existed has one group). Rejects with `EtcdUnavailableError` when etcd does not
 * answer in time, {@link GroupCountRecordError} when the value is not a count.
 */
export async function readGroupCount(client: Etcd3, cluster: string): Promise<number | undefined> {
  const key = groupsKey(cluster);
  const value = await withTimeout(
    client.get(key).string(),
    DEFAULT_CALL_TIMEOUT_MS,
    'read the group count',
  );
  return value === null ? undefined : parseCount(key, value);
}
