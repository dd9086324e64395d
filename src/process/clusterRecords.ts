// The cluster's records in etcd a node checks at start-up (its group count, its OpLog key id)
// and the OpLog key check a running node keeps.
import type { Logger } from 'pino';
import type { Etcd3 } from 'etcd3';
import {
  claimGroupCount,
  GroupCountRecordError,
  groupsKey,
} from '../adapters/etcd/clusterGroupsRecord.ts';
import {
  claimOplogKeyId,
  NO_OPLOG_KEY,
  oplogKeyIdKey,
  readOplogKeyId,
} from '../adapters/etcd/clusterKeyRecord.ts';
import { openEtcd } from '../adapters/etcd/etcdClient.ts';
import { oplogKeyId } from '../adapters/nats/batchSignature.ts';
import { systemClock } from '../adapters/systemClock.ts';
import type { NodeConfig } from '../config/config.ts';
import { etcdConnectionOptions, oplogSigningKey, redact } from '../config/credentials.ts';
import { checkGroupCount } from '../node/groupCountCheck.ts';
import type { ClusterKeyCheck } from '../node/nodeRuntimeConfig.ts';
import { checkOplogKeyId } from '../node/oplogKeyCheck.ts';
import type { Waiting } from '../node/waitingFor.ts';
import { skipOplogKeyCheckForTest } from './testHooks.ts';

/**
 * Records this node's OpLog key id as the cluster's when none is yet (the first node to start),
 * else throws {@link OplogKeyMismatchError} unless it is the cluster's: a node with another key
 * would pass over every message the primary writes.
 */
export async function checkClusterKey(
  client: Etcd3,
  config: NodeConfig,
  signingKey: Uint8Array | undefined,
  waiting: Waiting,
  log: Logger,
): Promise<void> {
  const keyId = signingKey === undefined ? NO_OPLOG_KEY : oplogKeyId(signingKey);
  const record = await waiting.retry(
    { logger: log, clock: systemClock },
    {
      what: `etcd at ${etcdEndpoints(config)} (the cluster's OpLog key id)`,
      event: 'etcd',
      attempt: () => claimOplogKeyId(client, config.cluster, keyId),
    },
  );
  const recordedAt = oplogKeyIdKey(config.cluster);
  if (record.created) {
    log.info(
      { event: 'oplogKeyRecorded', keyId, at: recordedAt },
      `recorded OpLog key id ${keyId} as cluster ${config.cluster}'s`,
    );
  }
  checkOplogKeyId(config.cluster, keyId, record.clusterKeyId, recordedAt);
}

/**
 * Records this node's `--groups` as the cluster's when none is yet (the first node to start),
 * else throws {@link GroupCountMismatchError} unless it is the cluster's: a node with another
 * count would own other shard ranges than its peers.
 */
export async function checkClusterGroups(
  client: Etcd3,
  config: NodeConfig,
  waiting: Waiting,
  log: Logger,
): Promise<void> {
  const record = await waiting.retry(
    { logger: log, clock: systemClock },
    {
      what: `etcd at ${etcdEndpoints(config)} (the cluster's group count)`,
      event: 'etcd',
      attempt: () => claimGroupCount(client, config.cluster, config.groups),
      fatal: (err) => (err instanceof GroupCountRecordError ? err : undefined),
    },
  );
  const recordedAt = groupsKey(config.cluster);
  if (record.created) {
    log.info(
      { event: 'groupsRecorded', groups: config.groups, at: recordedAt },
      `recorded ${config.groups} group(s) as cluster ${config.cluster}'s`,
    );
  }
  checkGroupCount(config.cluster, config.groups, record.clusterGroups, recordedAt);
}

/**
 * What a running node reads of the cluster's OpLog key id when it passes over a message signed
 * under another key (src/node/otherKeyWatch.ts), on its own etcd client; undefined for the
 * etcd OpLog (never signed) or when a test skips the check.
 */
export function clusterKeyCheck(
  config: NodeConfig,
): { readonly check: ClusterKeyCheck; close(): void } | undefined {
  if (config.oplog === 'etcd' || skipOplogKeyCheckForTest() === 'all') return undefined;
  const key = oplogSigningKey(config);
  const { client } = openEtcd(etcdConnectionOptions(config, config.etcd));
  return {
    check: {
      cluster: config.cluster,
      keyId: key === undefined ? NO_OPLOG_KEY : oplogKeyId(key),
      recordedAt: oplogKeyIdKey(config.cluster),
      clusterKeyId: () => readOplogKeyId(client, config.cluster),
    },
    close: () => client.close(),
  };
}

/** The etcd endpoints, credentials masked, as logs name them. */
export const etcdEndpoints = (config: NodeConfig): string =>
  (redact({ etcd: config.etcd })['etcd'] as string[]).join(',');
