// Runs the real `understudy` command as a child process (through tsx), for end-to-end tests.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `understudy <args>` and resolves when it exits. The settings a test means to pass are in
 * `args`: every `UNDERSTUDY_*` variable of this process is cleared for the child.
 */
export function runCli(args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('UNDERSTUDY_')),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`understudy ${args.join(' ')}: no exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
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
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('UNDERSTUDY_')),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
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
