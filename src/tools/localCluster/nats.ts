// Real nats-server processes for the demo and the tests: one server or a JetStream cluster, on
// random loopback ports with their own store directories, cleaned up on dispose.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildExitedError, ChildServer, delay, httpProbe } from './childServer.ts';
import { freePorts } from './freePort.ts';

/** A running nats-server. `[Symbol.asyncDispose]` stops it and deletes its store dir. */
export interface NatsServerHandle extends AsyncDisposable {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The HTTP monitoring port (`/healthz`, `/jsz`, `/connz`). */
  readonly monitorPort: number;
  /** The server's name in the cluster (`n1`...; undefined for a lone server). */
  readonly name: string | undefined;
  /** The server's JetStream store dir (JetStream keeps its files under `<storeDir>/jetstream`). */
  readonly storeDir: string;
  readonly pid: number | undefined;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the server freezes with its sockets open. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Kills it if it runs, starts it again on the same port and store dir, waits until ready. */
  restart(): Promise<void>;
  /** SIGTERM, wait for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/** A JetStream cluster; `[Symbol.asyncDispose]` stops every server and deletes their dirs. */
export interface NatsClusterHandle extends AsyncDisposable {
  readonly servers: readonly NatsServerHandle[];
  readonly urls: readonly string[];
}

const START_ATTEMPTS = 3;

interface JszMeta {
  readonly meta_cluster?: { readonly leader?: string; readonly cluster_size?: number };
}

async function metaLeader(monitorPort: number): Promise<string | undefined> {
  let leader: string | undefined;
  await httpProbe(`http://127.0.0.1:${monitorPort}/jsz`, (body) => {
    const jsz = JSON.parse(body) as JszMeta;
    const name = jsz.meta_cluster?.leader;
    leader = name !== undefined && name !== '' ? name : undefined;
    return true;
  });
  return leader;
}

class NatsServer implements NatsServerHandle {
  readonly url: string;
  private readonly child: ChildServer;

  constructor(
    readonly port: number,
    readonly monitorPort: number,
    readonly storeDir: string,
    args: readonly string[],
    private readonly ownsDir: boolean,
    readonly name: string | undefined = undefined,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
    this.child = new ChildServer({
      name: `nats-server :${port}`,
      command: 'nats-server',
      args,
      // /healthz checks JetStream too when it is enabled (nats-server 2.9).
      isReady: () => httpProbe(`http://127.0.0.1:${monitorPort}/healthz`, () => true),
      readyTimeoutMs: 30_000,
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  start(): Promise<void> {
    return this.child.start();
  }

  kill(): Promise<void> {
    return this.child.kill();
  }

  pause(): void {
    this.child.pause();
  }

  resume(): void {
    this.child.resume();
  }

  restart(): Promise<void> {
    return this.child.restart();
  }

  stop(): Promise<void> {
    return this.child.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.child.stop(2_000);
    if (this.ownsDir) await rm(this.storeDir, { recursive: true, force: true });
  }
}

/**
 * Starts one nats-server on a random loopback port (JetStream on by default, with its own
 * store dir) and resolves once `/healthz` answers ok. `config` is extra config-file text
 * (command-line flags win over it). Retries on fresh ports when the server dies at start
 * (e.g. a port was taken in the meantime).
 */
export async function startNats(
  options: { readonly jetstream?: boolean; readonly config?: string } = {},
): Promise<NatsServerHandle> {
  const storeDir = await mkdtemp(join(tmpdir(), 'understudy-nats-'));
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const [port, monitorPort] = await freePorts(2);
    if (port === undefined || monitorPort === undefined) throw new Error('no free ports');
    const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort)];
    if (options.jetstream ?? true) args.push('-js', '-sd', storeDir);
    if (options.config !== undefined) {
      const configFile = join(storeDir, 'extra.conf');
      await writeFile(configFile, options.config);
      args.push('-c', configFile);
    }
    const server = new NatsServer(port, monitorPort, storeDir, args, true);
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
      if (!(err instanceof ChildExitedError)) break;
    }
  }
  await rm(storeDir, { recursive: true, force: true });
  throw lastError;
}

/**
 * Starts a JetStream cluster of `size` servers (default 3) routed to each other, each on its
 * own random ports and store dir, and resolves once every server answers `/healthz` and all
 * agree on one JetStream meta leader.
 */
export async function startNatsCluster(size = 3): Promise<NatsClusterHandle> {
  const baseDir = await mkdtemp(join(tmpdir(), 'understudy-nats-cluster-'));
  const servers: NatsServer[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.stop()));
    await rm(baseDir, { recursive: true, force: true });
  };
  try {
    const ports = await freePorts(size * 3);
    const at = (i: number): number => {
      const port = ports[i];
      if (port === undefined) throw new Error('no free ports');
      return port;
    };
    const routePorts = Array.from({ length: size }, (_, i) => at(i * 3 + 2));
    const clusterName = `understudy-${process.pid}-${at(0)}`;
    for (let i = 0; i < size; i++) {
      const port = at(i * 3);
      const monitorPort = at(i * 3 + 1);
      const storeDir = join(baseDir, `n${i + 1}`);
      const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
      const config = [
        `server_name: n${i + 1}`,
        `listen: 127.0.0.1:${port}`,
        `http: 127.0.0.1:${monitorPort}`,
        `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
        `cluster { name: ${clusterName}, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes}] }`,
        '',
      ].join('\n');
      const configFile = join(baseDir, `n${i + 1}.conf`);
      await writeFile(configFile, config);
      servers.push(
        new NatsServer(port, monitorPort, storeDir, ['-c', configFile], false, `n${i + 1}`),
      );
    }
    // Each server's /healthz waits for the others, so start them all at once.
    await Promise.all(servers.map((server) => server.start()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const leaders = await Promise.all(servers.map((server) => metaLeader(server.monitorPort)));
      const first = leaders[0];
      if (first !== undefined && leaders.every((leader) => leader === first)) break;
      if (Date.now() > deadline) {
        throw new Error(
          `nats cluster: no JetStream meta leader agreed: ${JSON.stringify(leaders)}`,
        );
      }
      await delay(100);
    }
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    servers,
    urls: servers.map((server) => server.url),
    [Symbol.asyncDispose]: dispose,
  };
}
