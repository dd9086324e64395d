// Headless Chromium for tests that look at what a person would see (the inspect page, rendered
// diagrams): Debian's `chromium`, driven by puppeteer-core, with a fresh profile that is
// deleted afterwards. Tests that need it skip, saying why, when no Chromium is installed.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';

/**
 * Flags for a headless Chromium on a machine without a network: no GPU, no sandbox (tests run
 * as root), and nothing that phones home (the machine refuses those connections).
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where Chromium is: `UNDERSTUDY_CHROMIUM`, else Debian's `/usr/bin/chromium`; undefined when absent. */
export function chromiumPath(): string | undefined {
  const candidates = [process.env['UNDERSTUDY_CHROMIUM'], '/usr/bin/chromium'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
}

/** Why browser tests cannot run here, or undefined when they can. */
export function chromiumMissing(): string | undefined {
  return chromiumPath() === undefined
    ? "no Chromium: install Debian's `chromium` (scripts/ensure-deps.sh does as root) or set UNDERSTUDY_CHROMIUM"
    : undefined;
}

/** A running headless Chromium; disposing it closes the browser and deletes its profile. */
export interface BrowserHandle extends AsyncDisposable {
  readonly browser: Browser;
}

/** Starts headless Chromium with {@link CHROMIUM_FLAGS} and a fresh `--user-data-dir`. */
export async function launchChromium(): Promise<BrowserHandle> {
  const executablePath = chromiumPath();
  if (executablePath === undefined) throw new Error(chromiumMissing());
  const profile = await mkdtemp(join(tmpdir(), 'understudy-chromium-'));
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    userDataDir: profile,
    args: [...CHROMIUM_FLAGS],
    protocolTimeout: 60_000,
  });
  return {
    browser,
    async [Symbol.asyncDispose]() {
      await browser.close().catch(() => browser.process()?.kill('SIGKILL'));
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** The gitignored folder where tests leave screenshots and renders to look at. */
export async function artifactDir(): Promise<string> {
  const dir = fileURLToPath(new URL('../../.test-artifacts/', import.meta.url));
  await mkdir(dir, { recursive: true });
  return dir;
}
