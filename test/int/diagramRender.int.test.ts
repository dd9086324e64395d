/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The generated diagrams drawn by the real tools: Mermaid 11 (mermaid-cli in Debian's Chromium)
// and PlantUML (Debian's package, with Graphviz). Every state name must be in the picture,
// visible, and inside exactly the composite states it belongs to. Skips, saying why, when a
// tool is missing (`npm test` installs them: scripts/ensure-deps.sh).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyStateNode } from 'xstate';
import { masterNodeMachine } from '../../machines/masterNode.machine.ts';
import { diagramIds, toMermaid, toPlantUml } from '../../src/tools/diagram.ts';
import {
  artifactDir,
  CHROMIUM_FLAGS,
  chromiumMissing,
  chromiumPath,
  launchChromium,
  type BrowserHandle,
} from '../harness/browser.ts';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const mmdc = join(repoRoot, 'node_modules/.bin/mmdc');

/** A state as the checks need it: its diagram id, name and the ids of its ancestors. */
interface DrawnState {
  readonly id: string;
  readonly key: string;
  readonly compound: boolean;
  readonly ancestors: readonly string[];
}

function drawnStates(): DrawnState[] {
  const idOf = diagramIds(masterNodeMachine);
  const out: DrawnState[] = [];
  const visit = (node: AnyStateNode, ancestors: string[]): void => {
    out.push({
      id: idOf(node.id),
      key: node.key,
      compound: Object.keys(node.states).length > 0,
      ancestors,
    });
    for (const child of Object.values(node.states)) visit(child, [...ancestors, idOf(node.id)]);
  };
  for (const node of Object.values(masterNodeMachine.root.states)) visit(node, []);
  return out;
}

async function commandExists(command: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${command}`]).then(
    () => true,
    () => false,
  );
}

const mermaidMissing =
  chromiumMissing() ??
  (existsSync(mmdc) ? undefined : 'no mermaid-cli: `npm ci` installs @mermaid-js/mermaid-cli');

describe('generated diagrams, drawn by the real tools', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'understudy-diagrams-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it.skipIf(mermaidMissing !== undefined)(
    `Mermaid 11 draws every state, visible and nested right${mermaidMissing === undefined ? '' : ` (skipped: ${mermaidMissing})`}`,
    async () => {
      const source = join(work, 'masterNode.mmd');
      const svgFile = join(work, 'masterNode.svg');
      const config = join(work, 'puppeteer.json');
      await writeFile(source, toMermaid(masterNodeMachine));
      await writeFile(
        config,
        JSON.stringify({ executablePath: chromiumPath(), args: [...CHROMIUM_FLAGS] }),
      );
      const env = { ...process.env, PUPPETEER_SKIP_DOWNLOAD: '1' };
      await run(mmdc, ['-q', '-p', config, '-i', source, '-o', svgFile], { env, timeout: 120_000 });
      const artifacts = await artifactDir();
      await run(
        mmdc,
        [
          '-q',
          '-p',
          config,
          '-w',
          '1600',
          '-i',
          source,
          '-o',
          join(artifacts, 'masterNode.mermaid.png'),
        ],
        { env, timeout: 120_000 },
      );
      const svg = await readFile(svgFile, 'utf8');
      const { version } = JSON.parse(
        await readFile(join(repoRoot, 'node_modules/mermaid/package.json'), 'utf8'),
      ) as { version: string };
      expect(version.split('.')[0]).toBe('11');

      await using chromium: BrowserHandle = await launchChromium();
      const page = await chromium.browser.newPage();
      await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
      const problems = await page.evaluate((states: DrawnState[]) => {
        const found: string[] = [];
        const boxOf = new Map<string, DOMRect>();
        const svgRoot = document.querySelector('svg');
        const prefix = `${svgRoot?.id ?? ''}-state-`;
        const element = (s: DrawnState): Element | undefined =>
          s.compound
            ? (document.querySelector(`g.statediagram-cluster[data-id="${s.id}"]`) ?? undefined)
            : [...document.querySelectorAll('g.node')].find((g) =>
                new RegExp(`^${prefix}${s.id}-\\d+$`).test(g.id),
              );
        for (const s of states) {
          const el = element(s);
          if (el === undefined) {
            found.push(`${s.key}: not drawn`);
            continue;
          }
          // Page coordinates, so that boxes measured at different scroll positions compare.
          const b = (s.compound ? (el.querySelector('rect') ?? el) : el).getBoundingClientRect();
          boxOf.set(s.id, new DOMRect(b.x + scrollX, b.y + scrollY, b.width, b.height));
          // The name is drawn (a composite state's name is its cluster label) and not covered.
          const label = s.compound ? el.querySelector('.cluster-label') : el;
          const texts = [...(label?.querySelectorAll('p, span, text, tspan') ?? [])];
          const name = texts.find((t) => t.textContent?.trim() === s.key);
          if (name === undefined) {
            found.push(`${s.key}: name not shown (shows "${label?.textContent?.trim() ?? ''}")`);
            continue;
          }
          name.scrollIntoView({ block: 'center', inline: 'center' });
          const r = name.getBoundingClientRect();
          const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
          if (top === null || !(label?.contains(top) ?? false)) {
            found.push(`${s.key}: name covered by ${top?.outerHTML.slice(0, 80) ?? 'nothing'}`);
          }
        }
        const inside = (a: DOMRect, b: DOMRect): boolean =>
          a.left >= b.left - 1 &&
          a.right <= b.right + 1 &&
          a.top >= b.top - 1 &&
          a.bottom <= b.bottom + 1;
        for (const s of states) {
          const box = boxOf.get(s.id);
          if (box === undefined) continue;
          for (const other of states) {
            const outer = boxOf.get(other.id);
            if (!other.compound || other.id === s.id || outer === undefined) continue;
            const parent = s.ancestors.includes(other.id);
            if (parent && !inside(box, outer)) found.push(`${s.key}: drawn outside ${other.key}`);
            if (!parent && inside(box, outer)) found.push(`${s.key}: drawn inside ${other.key}`);
          }
        }
        return found;
      }, drawnStates());
      expect(problems).toEqual([]);
    },
    240_000,
  );

  it('PlantUML draws every state', async (ctx) => {
    const missing = [];
    if (!(await commandExists('plantuml'))) missing.push('plantuml');
    if (!(await commandExists('dot'))) missing.push('graphviz (dot)');
    if (missing.length > 0) {
      ctx.skip(
        `skipped: no ${missing.join(', ')}; install Debian's plantuml and graphviz (scripts/ensure-deps.sh does as root)`,
      );
    }
    const source = join(work, 'masterNode.puml');
    await writeFile(source, toPlantUml(masterNodeMachine));
    await run('plantuml', ['-tsvg', '-o', work, source], { timeout: 120_000 });
    const svg = await readFile(join(work, 'masterNode.svg'), 'utf8');
    expect(svg).not.toMatch(/Syntax Error|Cannot find Graphviz/i);
    const texts = new Set(
      [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => (m[1] ?? '').trim()),
    );
    const missingNames = drawnStates()
      .map((s) => s.key)
      .filter((key) => !texts.has(key));
    expect(missingNames).toEqual([]);
    await run('plantuml', ['-tpng', '-o', await artifactDir(), source], { timeout: 120_000 });
  }, 240_000);
});
