// Where the understudy package is (a clone of the repository, or node_modules/understudy) and
// its version, the same from the sources (src/) and from the build (dist/src/).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let found: { readonly root: string; readonly version: string } | undefined;

function find(): { readonly root: string; readonly version: string } {
  if (found !== undefined) return found;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'understudy' && typeof pkg.version === 'string') {
        return (found = { root: dir, version: pkg.version });
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('understudy: cannot find its own package.json');
    dir = parent;
  }
}

/** The directory of understudy's package.json (it holds bin/, dist/ and, in a clone, src/). */
export function packageRoot(): string {
  return find().root;
}

/** understudy's version, from its package.json. */
export function packageVersion(): string {
  return find().version;
}

/**
 * The V8 flags a node process runs with: a young generation of up to 64 MiB per semi-space
 * (V8's default is 16 MiB on 64-bit). A primary keeps every write in flight alive until
 * JetStream acknowledges it; with the default, hundreds of writes in flight outlive two
 * scavenges, are promoted and leave through full collections (38 % of a primary's busy time
 * under 32 batches of 100 outstanding). Measured with the write bench's `--focus batch`, runs
 * alternating on one machine: +4 to +12 % coalesced putStart writes/s, +15 to +42 %
 * putStartBatch. Flags a running process cannot take: `bin/understudy.js` (its `#!` line) and
 * the Dockerfile give the same.
 */
export const NODE_V8_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/** The `understudy` command as a child process: run `process.execPath` with these arguments first. */
export function cliEntry(): string {
  return join(packageRoot(), 'bin', 'understudy.js');
}
