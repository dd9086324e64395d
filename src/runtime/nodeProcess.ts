import { AuthorizationError, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
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
import { createNatsOpLog } from '../adapters/nats/natsOpLog.ts';
import { systemClock } from '../adapters/systemClock.ts';
import type { NodeConfig } from './config.ts';
import { etcdConnectionOptions, natsConnectionOptions, redact } from './credentials.ts';
import { NodeHttpServer } from './httpServer.ts';
import { FlightRecorder } from '../inspect/flightRecorder.ts';
import { INSPECT_EVENTS_PATH, inspectEventsRoute } from '../inspect/inspectRoute.ts';
import { NodeInspection } from '../inspect/nodeInspection.ts';
import { createNodeInspector } from './inspect.ts';
import { NodeMetrics } from './metrics.ts';
import { NodeRuntime } from './nodeRuntime.ts';
import { CHECKPOINT_PATH, checkpointRoute } from './checkpointRoute.ts';
import { packageVersion } from './packageInfo.ts';
import { testHookRoutes } from './testHooks.ts';
import { probePeerOverHttp, SWITCHOVER_PATH, switchoverRoute } from './switchoverRoute.ts';

/** A running node process: the runtime, its connections and its HTTP status server. */
export interface RunningNode {
  readonly runtime: NodeRuntime;
  readonly httpAddress: string;
  /** Stops the node gracefully (a primary hands over) and closes everything. */
  stop(): Promise<void>;
}

/** Longest wait between two attempts to reach NATS or etcd at start-up (ms). */
const MAX_RETRY_WAIT_MS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The wait before attempt `attempt + 1`: 500 ms, doubling, at most {@link MAX_RETRY_WAIT_MS}. */
const retryWait = (attempt: number): number =>
  Math.min(MAX_RETRY_WAIT_MS, 500 * 2 ** (attempt - 1));

/**
 * Connects to NATS, retrying while no server answers, with a warning per attempt naming the
 * servers. A refused login is not retried: it rejects.
 */
async function connectNats(config: NodeConfig, log: Logger): Promise<NatsConnection> {
  const servers = (redact({ nats: config.nats })['nats'] as string[]).join(',');
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect({
        servers: config.nats,
        name: `understudy-${config.cluster}-${config.id}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        ...natsConnectionOptions(config),
      });
      if (attempt > 1)
        log.info({ event: 'natsConnected', servers }, `connected to NATS at ${servers}`);
      return nc;
    } catch (err) {
      if (err instanceof AuthorizationError) {
        throw new Error(`NATS at ${servers} refused the login: ${err.message}`, { cause: err });
      }
      const waitMs = retryWait(attempt);
      log.warn(
        { event: 'natsUnavailable', servers, attempt, retryInMs: waitMs, err: String(err) },
        `waiting for NATS at ${servers}: ${err instanceof Error ? err.message : String(err)}; retrying in ${waitMs} ms`,
      );
      await sleep(waitMs);
    }
  }
}

/** Waits until etcd answers a read, with a warning per failed attempt naming the endpoints. */
async function waitForEtcd(config: NodeConfig, log: Logger): Promise<void> {
  const endpoints = (redact({ etcd: config.etcd })['etcd'] as string[]).join(',');
  const { client } = openEtcd(etcdConnectionOptions(config, config.etcd));
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.get(`/understudy/${config.cluster}/leader`).string();
        if (attempt > 1)
          log.info({ event: 'etcdConnected', endpoints }, `connected to etcd at ${endpoints}`);
        return;
      } catch (err) {
        const waitMs = retryWait(attempt);
        log.warn(
          { event: 'etcdUnavailable', endpoints, attempt, retryInMs: waitMs, err: String(err) },
          `waiting for etcd at ${endpoints}: ${err instanceof Error ? err.message : String(err)}; retrying in ${waitMs} ms`,
        );
        await sleep(waitMs);
      }
    }
  } finally {
    client.close();
  }
}

/**
 * Starts a node from its configuration: connects NATS and waits for etcd (retrying, with a
 * warning per attempt), serves HTTP, starts the machine.
 */
export async function startNode(config: NodeConfig, logger: Logger = pino()): Promise<RunningNode> {
  const log = logger.child({ node: config.id });
  const nc = await connectNats(config, log);
  await waitForEtcd(config, log).catch(async (err: unknown) => {
    await nc.close();
    throw err;
  });
  const opLog =
    config.oplog === 'etcd'
      ? createEtcdOpLog({
          client: etcdConnectionOptions(config, config.etcd),
          cluster: config.cluster,
        })
      : await createNatsOpLog({
          nc,
          cluster: config.cluster,
          replicas: config.streamReplicas,
          maxAgeMs: config.streamMaxAge,
          maxBytes: config.streamMaxBytes,
        });
  const checkpoints = await NatsCheckpointStore.open({
    nc,
    cluster: config.cluster,
    replicas: config.streamReplicas,
  });
  const http = await NodeHttpServer.listen(config.http);
  const httpAddress = config.advertise ?? http.url;
  if (config.advertise === undefined && /^http:\/\/(0\.0\.0\.0|\[::\]):/.test(http.url)) {
    log.warn(
      { event: 'noAdvertise', http: http.url },
      'the HTTP server listens on every interface: set --advertise to the URL other nodes and `understudy status` reach it at',
    );
  }
  const metrics = new NodeMetrics();
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
  const runtime = new NodeRuntime({
    nodeId: config.id,
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
      await checkpoints.close();
      await opLog.close();
      await nc.drain().catch(() => nc.close());
      await http.close();
      inspection.flush();
      recorder?.close();
      inspector?.stop();
      log.info({ event: 'stopped' }, 'node stopped');
    })());
  return { runtime, httpAddress, stop };
}
