// Master nodes as real child processes (`understudy node`), for end-to-end tests, the demo and
// the benchmarks: start, kill -9, pause, SIGTERM and restart them, read their JSON logs and
// their /status.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cliEntry, NODE_V8_FLAGS, packageRoot } from '../../process/packageInfo.ts';
import { waitUntilStopped } from './childServer.ts';

/** One JSON log line of a node (pino). */
export interface NodeLogLine {
  readonly time: number;
  readonly msg: string;
  readonly event?: string;
  readonly state?: string;
  readonly epoch?: number;
  readonly [field: string]: unknown;
}

/** What `/status` answers. */
export interface NodeStatusJson {
  readonly nodeId: string;
  readonly role: string;
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly logLastSeq: number;
  /** The state digest in hex (with `?digest`). */
  readonly digest?: string;
  readonly digestSeq?: number;
  readonly objectCount?: number;
  readonly fences: number;
  readonly promotions: number;
  /** Stream messages passed over because they were not batches of entries. */
  readonly skipped: number;
  /** Entries passed over because no elected primary wrote them. */
  readonly foreign: number;
  /** Why the node refuses to become eligible; absent when it does not. */
  readonly failClosed?: string;
}

export interface FleetOptions {
  readonly cluster: string;
  readonly nats: readonly string[];
  readonly etcd: readonly string[];
  readonly leaseTtlMs: number;
  /** More `understudy node` flags for every node. */
  readonly extraArgs?: readonly string[];
  /** More flags for one node (`--record <its file>`). */
  readonly nodeArgs?: (id: string) => readonly string[];
  /** Flags of the Node.js runtime itself for every node (e.g. `--cpu-prof`). */
  readonly runtimeArgs?: readonly string[];
  /**
   * More environment variables for one node's process (e.g. libfaketime's `LD_PRELOAD` and
   * `FAKETIME_*`, to move its wall clock); they stay the same when it restarts.
   */
  readonly nodeEnv?: (id: string) => Readonly<Record<string, string>>;
  /** Echo node logs to stderr (debugging). */
  readonly echo?: boolean;
  /** More environment variables for every node (e.g. `UNDERSTUDY_TEST_HOOKS`). */
  readonly env?: Readonly<Record<string, string>>;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export class NodeHandle {
  readonly logs: NodeLogLine[] = [];
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> = Promise.resolve(null);
  #stderrTail = '';
  readonly #waiters = new Set<() => void>();

  private constructor(
    readonly id: string,
    readonly httpPort: number,
    private readonly options: FleetOptions,
  ) {}

  static async start(id: string, options: FleetOptions): Promise<NodeHandle> {
    const node = new NodeHandle(id, await freeLoopbackPort(), options);
    node.#spawn();
    return node;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return (
      this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
    );
  }

  /** Resolves with the exit code once the process has exited (null when killed by a signal). */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** The last 4,000 characters the process wrote to stderr. */
  get stderr(): string {
    return this.#stderrTail;
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  #spawn(): void {
    const args = [
      ...NODE_V8_FLAGS,
      ...(this.options.runtimeArgs ?? []),
      cliEntry(),
      'node',
      '--id',
      this.id,
      '--cluster',
      this.options.cluster,
      '--nats',
      this.options.nats.join(','),
      '--etcd',
      this.options.etcd.join(','),
      '--lease-ttl',
      `${this.options.leaseTtlMs}ms`,
      '--http',
      `127.0.0.1:${this.httpPort}`,
      ...(this.options.extraArgs ?? []),
      ...(this.options.nodeArgs?.(this.id) ?? []),
    ];
    const child = spawn(process.execPath, args, {
      cwd: packageRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        UNDERSTUDY_CONFIG: '',
        ...this.options.env,
        ...this.options.nodeEnv?.(this.id),
      },
    });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (this.options.echo === true) process.stderr.write(`[${this.id}] ${line}\n`);
        try {
          this.logs.push(JSON.parse(line) as NodeLogLine);
        } catch {
          this.logs.push({ time: Date.now(), msg: line });
        }
        for (const wake of this.#waiters) wake();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.options.echo === true) process.stderr.write(`[${this.id}!] ${chunk}`);
      this.#stderrTail = (this.#stderrTail + chunk).slice(-4000);
    });
  }

  /** Resolves with the first log line (already seen or coming) that matches. */
  waitForLog(
    match: (line: NodeLogLine) => boolean,
    timeoutMs: number,
    from = 0,
  ): Promise<NodeLogLine> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.logs.slice(from).find(match);
        if (hit === undefined) return false;
        cleanup();
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`${this.id}: no matching log line within ${timeoutMs} ms\n${this.#stderrTail}`),
        );
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(wake);
      };
      const wake = (): void => void check();
      if (!check()) this.#waiters.add(wake);
    });
  }

  /** The node's /status (with its state digest when `digest` is set). */
  async status(digest = false): Promise<NodeStatusJson> {
    let res: Response;
    try {
      res = await fetch(`${this.url}/status${digest ? '?digest=1' : ''}`, {
        signal: AbortSignal.timeout(5000),
      });
    } catch (err) {
      // Say whether the process is gone, and what it said last, so a failure explains itself.
      const child = this.#child;
      const state = this.running
        ? 'running'
        : `gone (exit code ${String(child?.exitCode)}, signal ${String(child?.signalCode)})`;
      const lastLogs = this.logs.slice(-5).map((l) => JSON.stringify(l));
      throw new Error(
        `${this.id}: /status failed: ${String(err)}; the process is ${state}; stderr: ${this.#stderrTail.slice(-1000)}; last log lines: ${lastLogs.join(' | ')}`,
        { cause: err },
      );
    }
    return (await res.json()) as NodeStatusJson;
  }

  /**
   * Calls `probe` every 50 ms until it returns `{ found }`, and returns that value. A probe that
   * throws, or returns `{ miss }`, is a miss; after `timeoutMs` it fails with `what` and the last
   * miss.
   */
  async #poll<T>(
    what: string,
    timeoutMs: number,
    probe: () => Promise<{ found: T } | { miss: unknown }>,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const result = await probe();
        if ('found' in result) return result.found;
        last = result.miss;
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const shown =
      last instanceof Error || typeof last === 'string' ? String(last) : JSON.stringify(last);
    throw new Error(`${this.id}: ${what}; last: ${shown}\n${this.#stderrTail}`);
  }

  /** Polls /status until `match` holds; fails with the last status after `timeoutMs`. */
  waitForStatus(
    match: (status: NodeStatusJson) => boolean,
    timeoutMs: number,
    digest = false,
  ): Promise<NodeStatusJson> {
    return this.#poll('status never matched', timeoutMs, async () => {
      const status = await this.status(digest);
      return match(status) ? { found: status } : { miss: status };
    });
  }

  /**
   * Polls `/readyz` until it answers 200: a serving primary, or a standby eligible for
   * promotion (caught up to within its promotion lag). A restarted node says `standby` in
   * `/status` as soon as it follows the log, while it may still be folding its way up to it.
   * Fails with the last reason after `timeoutMs`.
   */
  async waitForReady(timeoutMs: number): Promise<void> {
    await this.#poll('never ready', timeoutMs, async () => {
      const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(5000) });
      return res.status === 200 ? { found: true } : { miss: `${res.status} ${await res.text()}` };
    });
  }

  /** kill -9, and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child?.kill('SIGKILL');
    await this.#exited;
  }

  pause(): void {
    this.#child?.kill('SIGSTOP');
    if (this.#child?.pid !== undefined) waitUntilStopped(this.#child.pid);
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** SIGTERM (graceful stop: a primary hands over); resolves with the exit code. */
  async terminate(timeoutMs = 20_000): Promise<number | null> {
    if (!this.running) return this.#child?.exitCode ?? null;
    this.#child?.kill('SIGTERM');
    const timer = setTimeout(() => this.#child?.kill('SIGKILL'), timeoutMs);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }

  /** Starts the node again (same id and HTTP port) after it exited or was killed. */
  async restart(): Promise<void> {
    await this.kill();
    this.#spawn();
  }
}

/** Several nodes of one cluster. */
export class NodeFleet implements AsyncDisposable {
  private constructor(readonly nodes: NodeHandle[]) {}

  static async start(ids: readonly string[], options: FleetOptions): Promise<NodeFleet> {
    const nodes = await Promise.all(ids.map((id) => NodeHandle.start(id, options)));
    return new NodeFleet(nodes);
  }

  node(id: string): NodeHandle {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Waits until exactly one running node reports itself primary (other than `except`). */
  async primary(timeoutMs: number, except?: NodeHandle): Promise<NodeHandle> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const candidates = this.nodes.filter((n) => n.running && n !== except);
      if (candidates.length === 0) throw new Error('every node has exited');
      const roles = await Promise.all(
        candidates.map((n) =>
          n.status().then(
            (s) => s.role,
            () => 'unreachable',
          ),
        ),
      );
      const primaries = candidates.filter((_, i) => roles[i] === 'primary');
      if (primaries.length === 1 && primaries[0] !== undefined) return primaries[0];
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no primary within ${timeoutMs} ms`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
  }
}
