#!/usr/bin/env node
// Builds the package: tsc (tsconfig.build.json) compiles src/ and machines/ to dist/, then every
// file of src/ that is not TypeScript (page assets, JSON) is copied to the same place under
// dist/src/, so code finds it with `new URL('./file', import.meta.url)` from the sources and
// from the build alike.
//
//   node scripts/build.js             build
//   node scripts/build.js --if-stale  build only when a source is newer than the last build
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = join(root, 'dist', '.build-stamp');
const inputs = ['src', 'machines', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];

/** Every file under `path` (or `path` itself), relative to the repository. */
function files(path) {
  const full = join(root, path);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full).flatMap((name) => files(join(path, name)));
}

/** True when dist/ was built after every input last changed. */
export function buildIsFresh() {
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  return inputs.flatMap(files).every((file) => statSync(join(root, file)).mtimeMs <= built);
}

/** Builds dist/ (throws when tsc fails); with `ifStale`, only when {@link buildIsFresh} is false. */
export function build({ ifStale = false } = {}) {
  if (ifStale && buildIsFresh()) return false;
  const started = Date.now();
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed (${result.status})`);
  for (const file of files('src').filter((f) => !f.endsWith('.ts'))) {
    const target = join(root, 'dist', file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(root, file), target);
  }
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  process.stderr.write(`build: dist/ in ${Date.now() - started} ms\n`);
  return true;
}

if (
  process.argv[1] !== undefined &&
  relative(process.argv[1], fileURLToPath(import.meta.url)) === ''
) {
  try {
    build({ ifStale: process.argv.includes('--if-stale') });
  } catch (err) {
    process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
