import { connect } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
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
import { createNodeInspector } from './inspect.ts';
import { NodeMetrics } from './metrics.ts';
import { NodeRuntime } from './nodeRuntime.ts';
import { CHECKPOINT_PATH, checkpointRoute } from './checkpointRoute.ts';
import { testHookRoutes } from './testHooks.ts';
import { probePeerOverHttp, SWITCHOVER_PATH, switchoverRoute } from './switchoverRoute.ts';

/** A running node process: the runtime, its connections and its HTTP status server. */
export interface RunningNode {
  readonly runtime: NodeRuntime;
  readonly httpAddress: string;
  /** Stops the node gracefully (a primary hands over) and closes everything. */
  stop(): Promise<void>;
}

/** Starts a node from its configuration: connects NATS and etcd, serves HTTP, starts the machine. */
export async function startNode(config: NodeConfig, logger: Logger = pino()): Promise<RunningNode> {
  const log = logger.child({ node: config.id });
  const nc = await connect({
    servers: config.nats,
    name: `understudy-${config.cluster}-${config.id}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    ...natsConnectionOptions(config),
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
  const httpAddress = http.url;
  const metrics = new NodeMetrics();
  const inspector =
    config.inspect === undefined ? undefined : createNodeInspector(config.inspect, log);
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
    ...(inspector === undefined ? {} : { inspect: inspector.inspect }),
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
      ...testHookRoutes(runtime),
    },
  });
  log.info({ event: 'started', http: httpAddress, config: redact(config) }, 'node started');
  runtime.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await runtime.stop();
      await checkpoints.close();
      await opLog.close();
      await nc.drain().catch(() => nc.close());
      await http.close();
      inspector?.stop();
      log.info({ event: 'stopped' }, 'node stopped');
    })());
  return { runtime, httpAddress, stop };
}
