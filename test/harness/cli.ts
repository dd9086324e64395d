// Runs the real `understudy` command (bin/understudy.js, the build in dist/), or any other
// program, as a child process for end-to-end tests. test/buildDist.ts builds dist/ before the
// tests when it is stale.
import { spawn } from 'node:child_process';
import { cliEntry, packageRoot } from '../../src/runtime/packageInfo.ts';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command args` in `cwd` with `env` and resolves when it exits; kills it and rejects
 * after `timeoutMs`.
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
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')}: no exit within ${options.timeoutMs} ms\n${stderr}`,
        ),
      );
    }, options.timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
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
