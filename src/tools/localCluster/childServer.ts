// A supervised child process (nats-server, etcd) for the demo and the tests: start and wait until
// ready, kill -9, SIGSTOP/SIGCONT, SIGTERM, restart with the same arguments. Its stdout and
// stderr go to a ring buffer so failures can say what the server printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/**
 * Blocks until the kernel reports process `pid` stopped (state T), at most `timeoutMs`:
 * SIGSTOP is delivered asynchronously, and a test that acts right after pausing must not race
 * the process's last moments of running.
 */
export function waitUntilStopped(pid: number, timeoutMs = 2_000): void {
  const deadline = Date.now() + timeoutMs;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < deadline) {
    let state: string | undefined;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    } catch {
      return; // no /proc (or the process is gone): nothing to wait for
    }
    if (state === 'T' || state === 't') return;
    Atomics.wait(nap, 0, 0, 2);
  }
}

/** How many bytes of output a child keeps for error messages. */
const TAIL_BYTES = 16 * 1024;

/** The child exited without being asked to (crash, bad flags, port taken). */
export class ChildExitedError extends UnderstudyError {
  override readonly name = 'ChildExitedError';
  readonly code = 'CHILD_EXITED';
  constructor(
    readonly server: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly outputTail: string,
    options?: ErrorOptions,
  ) {
    super(
      `${server} exited unexpectedly (code ${exitCode ?? '-'}, signal ${signal ?? '-'}); last output:\n${outputTail}`,
      options,
    );
  }
}

/** The child did not become ready before the deadline. */
export class ChildNotReadyError extends UnderstudyError {
  override readonly name = 'ChildNotReadyError';
  readonly code = 'CHILD_NOT_READY';
  constructor(
    readonly server: string,
    readonly timeoutMs: number,
    readonly outputTail: string,
    options?: ErrorOptions,
  ) {
    super(`${server} was not ready within ${timeoutMs} ms; last output:\n${outputTail}`, options);
  }
}

export interface ChildServerOptions {
  /** For messages: e.g. `nats-server :4222`. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Resolves true once the server serves; polled until it does. Should not throw. */
  readonly isReady: () => Promise<boolean>;
  readonly readyTimeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Polls an HTTP endpoint; true when `accept` likes the (2xx) body. Never throws. */
export async function httpProbe(url: string, accept: (body: string) => boolean): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    const body = await response.text();
    return response.ok && accept(body);
  } catch {
    return false;
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One child process, started again with the same command line on `restart`. An exit nobody
 * asked for is remembered: every later `kill`/`pause`/`resume`/`restart` then throws a
 * {@link ChildExitedError} carrying the output tail. `stop` and `dispose` never throw.
 */
export class ChildServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectingExit = false;
  private paused = false;
  private died: ChildExitedError | undefined;
  private output = '';

  constructor(private readonly options: ChildServerOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** What the child printed last (stdout and stderr interleaved). */
  tail(): string {
    return this.output;
  }

  /** Spawns the child and waits until `isReady` says yes; kills it and throws otherwise. */
  async start(): Promise<void> {
    if (this.child !== undefined) throw new Error(`${this.options.name} is already running`);
    this.died = undefined;
    this.expectingExit = false;
    this.paused = false;
    const child = spawn(this.options.command, [...this.options.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.options.env ?? process.env,
    });
    this.child = child;
    const append = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString('utf8')).slice(-TAIL_BYTES);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise<void>((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.child === child) this.child = undefined;
        if (!this.expectingExit) {
          this.died = new ChildExitedError(this.options.name, code, signal, this.output);
        }
        resolve();
      };
      child.once('exit', onExit);
      child.once('error', (err) => {
        // spawn failed (e.g. binary missing): no 'exit' follows.
        if (child.pid === undefined) {
          if (this.child === child) this.child = undefined;
          this.died = new ChildExitedError(this.options.name, null, null, String(err), {
            cause: err,
          });
          resolve();
        }
      });
    });

    const timeoutMs = this.options.readyTimeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.assertAlive();
      if (await this.options.isReady()) {
        this.assertAlive();
        return;
      }
      if (Date.now() > deadline) {
        const error = new ChildNotReadyError(this.options.name, timeoutMs, this.output);
        await this.kill().catch(() => undefined);
        throw error;
      }
      await delay(50);
    }
  }

  private assertAlive(): void {
    if (this.died !== undefined) throw this.died;
  }

  /** SIGKILL, resolves once the process is gone. A no-op when it is not running. */
  async kill(): Promise<void> {
    this.assertAlive();
    const child = this.child;
    if (child === undefined) return;
    this.expectingExit = true;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (and SIGCONT when paused); SIGKILL after `graceMs`. Never throws. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.expectingExit = true;
    child.kill('SIGTERM');
    if (this.paused) child.kill('SIGCONT');
    this.paused = false;
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, forced]);
    clearTimeout(timer);
    await this.exited;
  }

  /** SIGSTOP: the process freezes, its sockets stay open. */
  pause(): void {
    this.assertAlive();
    if (this.child === undefined) throw new Error(`${this.options.name} is not running`);
    this.child.kill('SIGSTOP');
    if (this.child.pid !== undefined) waitUntilStopped(this.child.pid);
    this.paused = true;
  }

  /** SIGCONT. */
  resume(): void {
    this.assertAlive();
    if (this.child === undefined) throw new Error(`${this.options.name} is not running`);
    this.child.kill('SIGCONT');
    this.paused = false;
  }

  /** Kills the process if it runs, then starts it again with the same command line. */
  async restart(): Promise<void> {
    this.assertAlive();
    await this.kill();
    await this.start();
  }
}
