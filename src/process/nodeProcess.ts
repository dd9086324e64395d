import { AuthorizationError, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import type { Etcd3 } from 'etcd3';
import {
  claimOplogKeyId,
  NO_OPLOG_KEY,
  oplogKeyIdKey,
  readOplogKeyId,
} from '../adapters/etcd/clusterKeyRecord.ts';
import {
  claimGroupCount,
  GroupCountRecordError,
  groupsKey,
} from '../adapters/etcd/clusterGroupsRecord.ts';
import { openEtcd } from '../adapters/etcd/etcdClient.ts';
import { createEtcdElector } from '../adapters/etcd/etcdElector.ts';
import { createEtcdOpLog } from '../adapters/etcd/etcdOpLog.ts';
import {
  createNatsAdminClientTransport,
  createNatsAdminServerTransport,
  maxAdminReplyBytes,
} from '../adapters/nats/natsAdminTransport.ts';
import { createNatsApiServerTransport } from '../adapters/nats/natsApiTransport.ts';
import { NatsCheckpointStore } from '../adapters/nats/natsCheckpointStore.ts';
import { oplogKeyId } from '../adapters/nats/batchSignature.ts';
import { natsLiveness } from '../adapters/nats/natsLiveness.ts';
import { createNatsOpLog } from '../adapters/nats/natsOpLog.ts';
import type { OpLog } from '../ports/opLog.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { ConfigError, nodeSettings, type NodeConfig } from '../config/config.ts';
import { labelProblem } from '../config/settings.ts';
import { StreamConfigError, type StreamSetting } from '../adapters/nats/streamLimits.ts';
import {
  etcdConnectionOptions,
  natsConnectionOptions,
  oplogSigningKey,
  redact,
} from '../config/credentials.ts';
import { checkOplogKeyId } from '../node/oplogKeyCheck.ts';
import { checkGroupCount } from '../node/groupCountCheck.ts';
import { NodeHttpServer } from './httpServer.ts';
import { logNatsConnection } from './natsConnectionLog.ts';
import { FlightRecorder } from '../observe/flightRecorder.ts';
import { INSPECT_EVENTS_PATH, inspectEventsRoute } from './inspectRoute.ts';
import { NodeInspection } from '../observe/nodeInspection.ts';
import { createNodeInspector } from './wsInspector.ts';
import { NodeMetrics } from '../observe/metrics.ts';
import { EventLoopDelay } from '../observe/eventLoopDelay.ts';
import { NodeRuntime } from '../node/nodeRuntime.ts';
import type { ClusterKeyCheck } from '../node/nodeRuntimeConfig.ts';
import { CHECKPOINT_PATH, checkpointRoute } from './checkpointRoute.ts';
import { packageVersion } from './packageInfo.ts';
import { skipOplogKeyCheckForTest, testHookRoutes } from './testHooks.ts';
import { Waiting } from '../node/waitingFor.ts';
import { probePeerOverHttp, SWITCHOVER_PATH, switchoverRoute } from './switchoverRoute.ts';

/** A running node process: the runtime, its connections and its HTTP status server. */
export interface RunningNode {
  readonly runtime: NodeRuntime;
  readonly httpAddress: string;
  /** Stops the node gracefully (a primary hands over) and closes everything. */
  stop(): Promise<void>;
}

/**
 * Connects NATS, waits for etcd to answer and opens the OpLog and the checkpoint store, each
 * retried with a warning
 * naming its address; closes what it opened when it fails.
 */
async function connectDependencies(
  config: NodeConfig,
  waiting: Waiting,
  log: Logger,
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
      await checkClusterGroups(client, config, waiting, log);
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

/**
 * Records this node's OpLog key id as the cluster's when none is yet (the first node to start),
 * else throws {@link OplogKeyMismatchError} unless it is the cluster's: a node with another key
 * would pass over every message the primary writes.
 */
async function checkClusterKey(
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
async function checkClusterGroups(
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
function clusterKeyCheck(
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

/** The etcd endpoints, credentials masked, as logs name them. */
const etcdEndpoints = (config: NodeConfig): string =>
  (redact({ etcd: config.etcd })['etcd'] as string[]).join(',');

/**
 * Starts a node from its configuration: serves HTTP (`/status` says what it waits for while it
 * starts), connects NATS, waits for etcd and the OpLog stream, starts the machine. Each
 * dependency is retried with a warning naming its address (see {@link Waiting}); a refused login
 * is not retried.
 */
export async function startNode(config: NodeConfig, logger: Logger = pino()): Promise<RunningNode> {
  const log = logger.child({ node: config.id });
  const waiting = new Waiting();
  const http = await NodeHttpServer.listen(config.http);
  const httpAddress = config.advertise ?? http.url;
  if (config.advertise === undefined && /^http:\/\/(0\.0\.0\.0|\[::\]):/.test(http.url)) {
    log.warn(
      { event: 'noAdvertise', http: http.url },
      'the HTTP server listens on every interface: set --advertise to the URL other nodes and `understudy status` reach it at',
    );
  }
  http.serveStarting(config.id, () => waiting.current);
  const { nc, opLog, checkpoints } = await connectDependencies(config, waiting, log).catch(
    async (err: unknown) => {
      await http.close();
      throw err;
    },
  );
  const stopNatsLog = logNatsConnection(nc, log);
  const metrics = new NodeMetrics(new EventLoopDelay());
  // The machine's inspection records: served at /inspect/events, recorded, sent to --inspect.
  const inspection = new NodeInspection({ nodeId: config.id, now: () => Date.now() });
  const inspector =
    config.inspect === undefined ? undefined : createNodeInspector(config.inspect, log);
  if (inspector !== undefined) inspection.subscribe((record) => inspector.send(record));
  const recorder =
    config.record === undefined
      ? undefined
      : new FlightRecorder(config.record, {
          maxBytes: config.recordMaxBytes,
          header: () => inspection.current(),
        });
  if (recorder !== undefined) inspection.subscribe((record) => recorder.write(record));
  const elector = createEtcdElector({
    client: etcdConnectionOptions(config, config.etcd),
    cluster: config.cluster,
    nodeId: config.id,
    ttlMs: config.leaseTtl,
    clock: systemClock,
  });
  const keyRecord = clusterKeyCheck(config);
  const runtime = new NodeRuntime({
    nodeId: config.id,
    ...(keyRecord === undefined ? {} : { clusterKey: keyRecord.check }),
    coordinatorName: `etcd at ${etcdEndpoints(config)}`,
    address: httpAddress,
    opLog,
    elector,
    apiServer: createNatsApiServerTransport({ nc, cluster: config.cluster }),
    admin: {
      server: createNatsAdminServerTransport({ nc, cluster: config.cluster }),
      client: createNatsAdminClientTransport({ nc, cluster: config.cluster }),
      maxReplyBytes: maxAdminReplyBytes(nc),
    },
    checkpoints,
    clock: systemClock,
    logger: log,
    probePeer: (member) => probePeerOverHttp(member),
    metrics,
    inspect: inspection.inspect,
    config: {
      leaseTtlMs: config.leaseTtl,
      maxLagForPromotion: config.maxLagForPromotion,
      campaignBaseDelayMs: config.campaignBaseDelay,
      campaignMaxDelayMs: config.campaignMaxDelay,
      handoverTimeoutMs: config.handoverTimeout,
      eviction: { highWater: config.evictionHighWater, lowWater: config.evictionLowWater },
      verifyIntervalMs: config.verifyInterval,
      verifyFraction: config.verifyFraction,
      maxSyncGap: config.maxSyncGap,
      maxMismatches: config.maxMismatches,
      checkpointIntervalEntries: config.checkpointIntervalEntries,
      checkpointIntervalMs: config.checkpointInterval,
      checkpointKeep: config.checkpointKeep,
    },
  });
  http.serve(runtime, {
    maxLagForPromotion: config.maxLagForPromotion,
    metrics,
    routes: {
      [SWITCHOVER_PATH]: switchoverRoute(runtime),
      [CHECKPOINT_PATH]: checkpointRoute(runtime),
      [INSPECT_EVENTS_PATH]: inspectEventsRoute(inspection),
      ...testHookRoutes(runtime),
    },
  });
  log.info(
    { event: 'started', version: packageVersion(), http: httpAddress, config: redact(config) },
    'node started',
  );
  runtime.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await runtime.stop();
      keyRecord?.close();
      await checkpoints.close();
      await opLog.close();
      stopNatsLog();
      await nc.drain().catch(() => nc.close());
      await http.close();
      inspection.flush();
      recorder?.close();
      inspector?.stop();
      log.info({ event: 'stopped' }, 'node stopped');
    })());
  return { runtime, httpAddress, stop };
}
