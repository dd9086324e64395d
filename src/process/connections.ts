// A group member's connections: NATS, the OpLog (a JetStream stream or etcd) and the checkpoint
// store, each retried while it does not answer.
import { AuthorizationError, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { openEtcd } from '../adapters/etcd/etcdClient.ts';
import { createEtcdOpLog } from '../adapters/etcd/etcdOpLog.ts';
import { NatsCheckpointStore } from '../adapters/nats/natsCheckpointStore.ts';
import { natsLiveness } from '../adapters/nats/natsLiveness.ts';
import { createNatsOpLog } from '../adapters/nats/natsOpLog.ts';
import { StreamConfigError, type StreamSetting } from '../adapters/nats/streamLimits.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { ConfigError, nodeSettings, type NodeConfig } from '../config/config.ts';
import {
  etcdConnectionOptions,
  natsConnectionOptions,
  oplogSigningKey,
  redact,
} from '../config/credentials.ts';
import { labelProblem } from '../config/settings.ts';
import type { Waiting } from '../node/waitingFor.ts';
import type { OpLog } from '../ports/opLog.ts';
import { checkClusterGroups, checkClusterKey, etcdEndpoints } from './clusterRecords.ts';
import { skipOplogKeyCheckForTest } from './testHooks.ts';

/**
 * Connects NATS, waits for etcd to answer and opens the OpLog and the checkpoint store, each
 * retried with a warning
 * naming its address; closes what it opened when it fails.
 */
export async function connectDependencies(
  config: NodeConfig,
  waiting: Waiting,
  log: Logger,
  /**
   * The process's settings when this member checks the cluster's group count (the first
   * member: the count is checked once etcd answers, before any stream is opened).
   */
  groupsOf?: NodeConfig,
): Promise<{ nc: NatsConnection; opLog: OpLog; checkpoints: NatsCheckpointStore }> {
  const deps = { logger: log, clock: systemClock };
  const servers = (redact({ nats: config.nats })['nats'] as string[]).join(',');
  // Read first: a bad key file fails the start at once, before any connection.
  const signingKey = oplogSigningKey(config);
  // Pings at a fraction of the TTL: a hung server (sockets open, nothing answering) is left for
  // another one of the cluster within the TTL, not after the client's default 2 minutes.
  const liveness = natsLiveness(config.leaseTtl);
  const nc = await waiting.retry(deps, {
    what: `NATS at ${servers}`,
    event: 'nats',
    attempt: () =>
      connect({
        servers: config.nats,
        name: `understudy-${config.cluster}-${config.id}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        // Without it every request (each JetStream append) builds an Error and a timer's Error up
        // front, for a stack to show if it fails: 3 % of a primary's CPU at 2,000 writes/s.
        noAsyncTraces: true,
        ...liveness.connection,
        ...natsConnectionOptions(config),
      }),
    fatal: (err) =>
      err instanceof AuthorizationError
        ? new Error(`NATS at ${servers} refused the login: ${err.message}`, { cause: err })
        : undefined,
  });
  const closedFor = (err: unknown): Error | undefined =>
    nc.isClosed()
      ? new Error(`NATS at ${servers} closed the connection`, { cause: err })
      : undefined;
  try {
    const { client } = openEtcd(etcdConnectionOptions(config, config.etcd));
    try {
      await waiting.retry(deps, {
        what: `etcd at ${etcdEndpoints(config)}`,
        event: 'etcd',
        attempt: () => client.get(`/understudy/${config.cluster}/leader`).string(),
      });
      if (groupsOf !== undefined) await checkClusterGroups(client, groupsOf, waiting, log);
      if (config.oplog !== 'etcd' && skipOplogKeyCheckForTest() === undefined) {
        await checkClusterKey(client, config, signingKey, waiting, log);
      }
    } finally {
      client.close();
    }
    const opLog =
      config.oplog === 'etcd'
        ? createEtcdOpLog({
            client: etcdConnectionOptions(config, config.etcd),
            cluster: config.cluster,
          })
        : await waiting.retry(deps, {
            what: `NATS JetStream at ${servers} (the OpLog stream of cluster ${config.cluster})`,
            event: 'jetStream',
            attempt: () =>
              createNatsOpLog({
                nc,
                cluster: config.cluster,
                ...(signingKey === undefined ? {} : { signingKey }),
                replicas: config.streamReplicas,
                maxAgeMs: config.streamMaxAge,
                maxBytes: config.streamMaxBytes,
                ackTimeoutMs: liveness.ackTimeoutMs,
                apiTimeoutMs: liveness.apiTimeoutMs,
                clock: deps.clock,
              }),
            // The connection is gone for good, or the settings are refused: no attempt can succeed.
            fatal: (err) => refusedSettings(err) ?? closedFor(err),
          });
    const checkpoints = await waiting.retry(deps, {
      what: `NATS JetStream at ${servers} (the checkpoint store of cluster ${config.cluster})`,
      event: 'jetStream',
      attempt: () =>
        NatsCheckpointStore.open({ nc, cluster: config.cluster, replicas: config.streamReplicas }),
      fatal: (err) => refusedSettings(err) ?? closedFor(err),
    });
    return { nc, opLog, checkpoints };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

/** The node setting each stream setting comes from. */
const SETTING_OF: Record<StreamSetting, keyof NodeConfig> = {
  maxAge: 'streamMaxAge',
  maxBytes: 'streamMaxBytes',
  replicas: 'streamReplicas',
  duplicateWindow: 'streamMaxAge',
};

/**
 * A stream configuration NATS JetStream refused, as a {@link ConfigError} naming the setting
 * (flag and variable) it is about, or the stream settings when it names none; undefined for any
 * other error.
 */
export function refusedSettings(err: unknown): ConfigError | undefined {
  if (!(err instanceof StreamConfigError)) return undefined;
  const named =
    err.setting === undefined
      ? 'streamReplicas, streamMaxAge or streamMaxBytes (or the NATS server)'
      : SETTING_OF[err.setting];
  return new ConfigError([labelProblem(`${named}: ${err.message}`, nodeSettings)]);
}
