// Runs the real `understudy` command (bin/understudy.js, the build in dist/) as a child process,
// for end-to-end tests. test/buildDist.ts builds dist/ before the tests when it is stale.
import { spawn } from 'node:child_process';
import { cliEntry, packageRoot } from '../../src/runtime/packageInfo.ts';

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
    const child = spawn(process.execPath, [cliEntry(), ...args], {
      cwd: packageRoot(),
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
