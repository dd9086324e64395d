#!/usr/bin/env -S node --max-semi-space-size=64
// The `understudy` command: runs the compiled CLI (dist/, built by `npm run build`; the npm
// package ships it built). The `#!` line gives V8 the flags of NODE_V8_FLAGS
// (src/process/packageInfo.ts): run as `node bin/understudy.js`, give them yourself.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'understudy: dist/ is missing; in a clone of the repository run `npm run build` first\n',
  );
  process.exit(1);
}
await import(main.href);
