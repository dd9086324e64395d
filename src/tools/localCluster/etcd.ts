// A real etcd for the demo and the tests: random client and peer ports, its own data dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChildExitedError, ChildServer, httpProbe } from './childServer.ts';
import { freePorts } from './freePort.ts';

/** A running single-member etcd. `[Symbol.asyncDispose]` stops it and deletes its data dir. */
export interface EtcdHandle extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number | undefined;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Kills it if it runs, starts it again on the same ports and data dir, waits until ready. */
  restart(): Promise<void>;
  /** SIGTERM, wait for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

const START_ATTEMPTS = 3;

/**
 * Starts a single-member etcd on random loopback client and peer ports with its own data
 * dir, and resolves once `GET /health` says `"health":"true"`. Retries on fresh ports when
 * it dies at start.
 */
export async function startEtcd(): Promise<EtcdHandle> {
  const baseDir = await mkdtemp(join(tmpdir(), 'understudy-etcd-'));
  const dataDir = join(baseDir, 'data');
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const [port, peerPort] = await freePorts(2);
    if (port === undefined || peerPort === undefined) throw new Error('no free ports');
    const client = `http://127.0.0.1:${port}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const child = new ChildServer({
      name: `etcd :${port}`,
      command: 'etcd',
      args: [
        '--name',
        'n1',
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        client,
        '--advertise-client-urls',
        client,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `n1=${peer}`,
        '--initial-cluster-state',
        'new',
      ],
      isReady: () =>
        httpProbe(`${client}/health`, (body) => {
          const health = (JSON.parse(body) as { health?: unknown }).health;
          return health === 'true' || health === true;
        }),
      readyTimeoutMs: 30_000,
    });
    try {
      await child.start();
    } catch (err) {
      lastError = err;
      await child.stop();
      await rm(dataDir, { recursive: true, force: true });
      if (!(err instanceof ChildExitedError)) break;
      continue;
    }
    return {
      endpoint: client,
      port,
      dataDir,
      get pid() {
        return child.pid;
      },
      kill: () => child.kill(),
      pause: () => child.pause(),
      resume: () => child.resume(),
      restart: () => child.restart(),
      stop: () => child.stop(),
      async [Symbol.asyncDispose]() {
        await child.stop(2_000);
        await rm(baseDir, { recursive: true, force: true });
      },
    };
  }
  await rm(baseDir, { recursive: true, force: true });
  throw lastError;
}
