#!/usr/bin/env node
// Builds the package: tsc (tsconfig.build.json) compiles src/ and machines/ to dist/, then every
// file of src/ that is not TypeScript (page assets, JSON) is copied to the same place under
// dist/src/, so code finds it with `new URL('./file', import.meta.url)` from the sources and
// from the build alike. The inspect page's scripts (src/tools/inspect/ui/*.ts, for the browser)
// are compiled one by one to ES modules beside the page with the options of their own
// tsconfig.json (`npm run check` type-checks them); the server compiles them the same way on
// request when it runs from the sources (src/tools/inspect/uiFiles.ts).
//
//   node scripts/build.js             build
//   node scripts/build.js --if-stale  build only when a source is newer than the last build
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = join(root, 'dist', '.build-stamp');
const UI = join('src', 'tools', 'inspect', 'ui');
const UI_TSCONFIG = join(UI, 'tsconfig.json');
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

/** The inspect page's scripts as ES modules: `ui/x.ts` to `dist/.../ui/x.js`. */
function compileUi() {
  const ts = createRequire(import.meta.url)('typescript');
  const configPath = join(root, UI_TSCONFIG);
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (parsed === undefined) throw new Error(`cannot read ${UI_TSCONFIG}`);
  const compilerOptions = { ...parsed.options, noEmit: false, sourceMap: false };
  for (const file of files(UI).filter((f) => f.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(root, file), 'utf8'), {
      fileName: join(root, file),
      compilerOptions,
    });
    const target = join(root, 'dist', file.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
}

/**
 * Removes what an earlier build left in dist/ for a source that is gone (a file moved or
 * deleted since): tsc and the copies only ever add, and the package ships all of dist/.
 */
function pruneStale() {
  for (const built of [...files('dist/src'), ...files('dist/machines')]) {
    const path = relative('dist', built);
    const source = path.endsWith('.d.ts')
      ? path.replace(/\.d\.ts$/, '.ts')
      : path.endsWith('.js') && !existsSync(join(root, path))
        ? path.replace(/\.js$/, '.ts')
        : path;
    if (!existsSync(join(root, source))) rmSync(join(root, built));
  }
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
  for (const file of files('src').filter((f) => !f.endsWith('.ts') && f !== UI_TSCONFIG)) {
    const target = join(root, 'dist', file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(root, file), target);
  }
  compileUi();
  pruneStale();
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
