// Runs the real `understudy` command (bin/understudy.js, the build in dist/), or any other
// program, as a child process for end-to-end tests. test/buildDist.ts builds dist/ before the
// tests when it is stale.
import { spawn } from 'node:child_process';
import type { CommandOutput } from '../../src/cli/replayCommand.ts';
import { cliEntry, packageRoot } from '../../src/process/packageInfo.ts';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** SIGKILL to every process of the group `pid` leads (none left: nothing happens). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone.
  }
}

/**
 * Runs `command args` in `cwd` with `env` and resolves when it exits; kills it and rejects
 * after `timeoutMs`. The child leads a process group of its own, and whatever of that group
 * is left when it exits or times out (the servers and nodes `understudy demo` starts) is
 * killed with it, so no test leaves processes behind.
 */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env,
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      killGroup(child.pid);
      reject(
        new Error(
          `${command} ${args.join(' ')}: no exit within ${options.timeoutMs} ms\n${stderr}`,
        ),
      );
    }, options.timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      killGroup(child.pid);
      resolve({ code, stdout, stderr });
    });
  });
}

/** This process's environment without the variables whose names match `drop`. */
export function envWithout(drop: RegExp): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !drop.test(name)));
}

/**
 * Runs `understudy <args>` and resolves when it exits. The settings a test means to pass are in
 * `args`: every `UNDERSTUDY_*` variable of this process is cleared for the child.
 */
export function runCli(args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
  return runProcess(process.execPath, [cliEntry(), ...args], {
    cwd: packageRoot(),
    env: envWithout(/^UNDERSTUDY_/),
    timeoutMs,
  });
}

/** A long-running `understudy` command (`inspect`): its printed URL; disposing it stops it. */
export interface CliServer extends AsyncDisposable {
  readonly url: string;
  /** What it printed on stderr so far. */
  stderr(): string;
}

/**
 * Starts `understudy <args>` and resolves once it prints `understudy <name>: <url>` on stdout.
 * Disposing sends SIGTERM (SIGKILL after 5 s) and waits for the exit.
 */
export function startCliServer(args: readonly string[], timeoutMs = 60_000): Promise<CliServer> {
  const child = spawn(process.execPath, [cliEntry(), ...args], {
    cwd: packageRoot(),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: envWithout(/^UNDERSTUDY_/),
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`understudy ${args.join(' ')}: no URL within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      const url = /^understudy \w+: (http:\/\/\S+?)\/?$/m.exec(stdout)?.[1];
      if (url === undefined) return;
      clearTimeout(timer);
      resolve({ url, stderr: () => stderr, [Symbol.asyncDispose]: stop });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`understudy ${args.join(' ')} exited (${code ?? 'signal'})\n${stderr}`));
    });
  });
}

/** A {@link CommandOutput} for a command run in-process, keeping what it wrote. */
export function captureOutput(): CommandOutput & { out: string; err: string } {
  const sink = {
    out: '',
    err: '',
    stdout: (t: string) => void (sink.out += t),
    stderr: (t: string) => void (sink.err += t),
  };
  return sink;
}
