// The inspect page's scripts are TypeScript (src/tools/inspect/ui/*.ts): the browser gets the
// same ES modules whether the inspector runs from the build (dist/, compiled by
// scripts/build.js) or from the sources (compiled on request by the server), and never a
// TypeScript file or the page's tsconfig.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UI_DIR } from '../../src/tools/inspect/inspectServer.ts';
import { readUiFile } from '../../src/tools/inspect/uiFiles.ts';

const DIST_UI = fileURLToPath(new URL('../../dist/src/tools/inspect/ui/', import.meta.url));
const scripts = readdirSync(UI_DIR)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, '.js'));

describe('the inspect page from the sources and from the build', () => {
  it('has its scripts in TypeScript only (no hand-written JavaScript beside them)', () => {
    expect(scripts).toEqual(expect.arrayContaining(['inspect.js', 'chart.js']));
    expect(readdirSync(UI_DIR).filter((f) => f.endsWith('.js'))).toEqual([]);
  });

  it.each(scripts)('serves %s from the sources as the build compiled it', async (script) => {
    const fromSources = String(await readUiFile(`${UI_DIR}${script}`));
    expect(fromSources).toBe(readFileSync(`${DIST_UI}${script}`, 'utf8'));
    // An ES module the browser can load: relative imports name the compiled files.
    expect(fromSources).not.toMatch(/from ['"]\.[^'"]*\.ts['"]/);
    expect(fromSources).not.toMatch(/^import type|: string\b/m);
  });

  it('the build ships no TypeScript and no tsconfig for the page', () => {
    const shipped = readdirSync(DIST_UI);
    expect(shipped.filter((f) => f.endsWith('.ts') || f.endsWith('.json'))).toEqual([]);
    expect(shipped).toEqual(expect.arrayContaining(['index.html', 'inspect.css', ...scripts]));
    expect(existsSync(`${UI_DIR}tsconfig.json`)).toBe(true);
  });

  it('has no file for a name without a page script', async () => {
    expect(await readUiFile(`${UI_DIR}nothing.js`)).toBeUndefined();
  });
});
