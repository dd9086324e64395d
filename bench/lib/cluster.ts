// A benchmark cluster: etcd and nats-server started through the test harness, and master
// nodes as child processes (`understudy node`), with a client and mounted segments.
import { type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import {
  startEtcd,
  startNats,
  type EtcdHandle,
  type NatsServerHandle,
} from '../../test/harness/index.ts';
import { NodeFleet, type NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';

/** etcd and one nats-server (JetStream, file storage) on free ports. */
export class BenchServers implements AsyncDisposable {
  private constructor(
    readonly etcd: EtcdHandle,
    readonly nats: NatsServerHandle,
  ) {}

  static async start(): Promise<BenchServers> {
    const etcd = await startEtcd();
    try {
      return new BenchServers(etcd, await startNats());
    } catch (err) {
      await etcd[Symbol.asyncDispose]();
      throw err;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.resolve(this.nats[Symbol.asyncDispose]()).catch(() => undefined);
    await Promise.resolve(this.etcd[Symbol.asyncDispose]()).catch(() => undefined);
  }
}

export interface BenchClusterOptions {
  /** Cluster name (a fresh one per cluster keeps runs apart). */
  readonly cluster: string;
  readonly nodeIds: readonly string[];
  readonly leaseTtlMs: number;
  /** More `understudy node` flags (e.g. `--oplog etcd`). */
  readonly extraArgs?: readonly string[];
  /** Node.js runtime flags of the nodes (e.g. `--cpu-prof`). */
  readonly runtimeArgs?: readonly string[];
  /** Storage nodes to mount one segment on each (default 4). */
  readonly storageNodes?: number;
  /** Per-attempt timeout of the client (default 5000 ms). */
  readonly requestTimeoutMs?: number;
}

/** Master nodes of one cluster, its primary, a client, and mounted segments. */
export class BenchCluster implements AsyncDisposable {
  private constructor(
    readonly fleet: NodeFleet,
    readonly client: UnderstudyClient,
    readonly primary: NodeHandle,
  ) {}

  /** The nodes other than the primary found at start. */
  get standbys(): NodeHandle[] {
    return this.fleet.nodes.filter((n) => n !== this.primary);
  }

  static async start(servers: BenchServers, options: BenchClusterOptions): Promise<BenchCluster> {
    const fleet = await NodeFleet.start(options.nodeIds, {
      cluster: options.cluster,
      nats: [servers.nats.url],
      etcd: [servers.etcd.endpoint],
      leaseTtlMs: options.leaseTtlMs,
      extraArgs: ['--log-level', 'info', ...(options.extraArgs ?? [])],
      ...(options.runtimeArgs === undefined ? {} : { runtimeArgs: options.runtimeArgs }),
      // BENCH_ECHO=1: the nodes' log lines on stderr (debugging a run).
      echo: process.env['BENCH_ECHO'] === '1',
    });
    let client: UnderstudyClient | undefined;
    try {
      const primary = await fleet.primary(60_000);
      // Every standby up and following before measuring.
      await Promise.all(
        fleet.nodes
          .filter((n) => n !== primary)
          .map((n) => n.waitForStatus((s) => s.role === 'standby', 60_000)),
      );
      client = await createClient({
        servers: servers.nats.url,
        cluster: options.cluster,
        requestTimeoutMs: options.requestTimeoutMs ?? 5000,
        deadlineMs: 60_000,
        backoff: { initialMs: 10, maxMs: 100 },
      });
      for (let s = 0; s < (options.storageNodes ?? 4); s++) {
        await client.mountSegment(`bench-seg-${s}`, `storage-${s}`, 2 ** 50);
      }
      return new BenchCluster(fleet, client, primary);
    } catch (err) {
      await client?.close().catch(() => undefined);
      await fleet[Symbol.asyncDispose]();
      throw err;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.client.close().catch(() => undefined);
    await this.fleet[Symbol.asyncDispose]();
  }
}
