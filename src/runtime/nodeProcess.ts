import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import { createEtcdElector } from '../adapters/etcd/etcdElector.ts';
import { createNatsApiServerTransport } from '../adapters/nats/natsApiTransport.ts';
import { createNatsOpLog } from '../adapters/nats/natsOpLog.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { shardDigest, stateDigest } from '../domain/checksum.ts';
import { SHARD_COUNT } from '../domain/shard.ts';
import type { NodeConfig } from './config.ts';
import { etcdConnectionOptions, natsConnectionOptions, redact } from './credentials.ts';
import { NodeRuntime } from './nodeRuntime.ts';

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
  const opLog = await createNatsOpLog({
    nc,
    cluster: config.cluster,
    replicas: config.streamReplicas,
    maxAgeMs: config.streamMaxAge,
    maxBytes: config.streamMaxBytes,
  });
  const http = createServer();
  const [host, port] = splitHostPort(config.http);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, resolve);
  });
  const bound = http.address() as AddressInfo;
  const httpAddress = `http://${bound.address}:${bound.port}`;
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
    clock: systemClock,
    logger: log,
    config: {
      leaseTtlMs: config.leaseTtl,
      maxLagForPromotion: config.maxLagForPromotion,
      campaignBaseDelayMs: config.campaignBaseDelay,
      campaignMaxDelayMs: config.campaignMaxDelay,
      handoverTimeoutMs: config.handoverTimeout,
      eviction: { highWater: config.evictionHighWater, lowWater: config.evictionLowWater },
    },
  });
  serveStatus(http, runtime);
  log.info({ event: 'started', http: httpAddress, config: redact(config) }, 'node started');
  runtime.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await runtime.stop();
      await opLog.close();
      await nc.drain().catch(() => nc.close());
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      log.info({ event: 'stopped' }, 'node stopped');
    })());
  return { runtime, httpAddress, stop };
}

function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  if (i < 0) return ['127.0.0.1', Number(address)];
  return [address.slice(0, i) || '127.0.0.1', Number(address.slice(i + 1))];
}

function serveStatus(http: Server, runtime: NodeRuntime): void {
  http.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const status = runtime.status();
    switch (url.pathname) {
      case '/healthz':
        return send(200, { ok: true });
      case '/readyz': {
        const ready = status.role === 'primary' || status.role === 'standby';
        return send(ready ? 200 : 503, { ready, role: status.role });
      }
      case '/status': {
        if (url.searchParams.has('digest')) {
          const state = runtime.store.state;
          const shards = url.searchParams.has('shards')
            ? Array.from({ length: SHARD_COUNT }, (_, i) => shardDigest(state, i))
            : undefined;
          return send(200, {
            ...status,
            digestSeq: state.appliedSeq,
            digest: stateDigest(state),
            objectCount: state.objectCount,
            shards,
          });
        }
        return send(200, status);
      }
      default:
        return send(404, { error: 'not found' });
    }
  });
}
