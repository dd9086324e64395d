// docs/benchmarks.md, generated from the benchmarks' recorded runs (bench/results/<bench>.json,
// written by each full `npm run bench -- NAME`): the figures as measured, with the machine, load
// average, date and commit of each run. test/unit/generatedDocs.unit.test.ts fails when the
// checked-in page and the results disagree, or a figure listed in benchmarkSpecs.json (the
// benchmarks and their figures, as data) is missing from them.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchRecord } from '../bench/lib/report.ts';

/** Where the generated page is checked in. */
export const BENCHMARKS_PATH = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));
/** Where the recorded runs are. */
export const RESULTS_DIR = fileURLToPath(new URL('../bench/results/', import.meta.url));

/** One figure of the page: its key in the results, what it is, and the target (if any). */
export interface FigureSpec {
  readonly key: string;
  /** What it is; `{key}` is replaced by that figure of the same run (e.g. `{largeObjects}`). */
  readonly label: string;
  readonly target?: string;
}

export interface BenchSpec {
  readonly bench: string;
  /** What the benchmark does, in a sentence or two (its file's header says more). */
  readonly what: string;
  readonly figures: readonly FigureSpec[];
}

/** Where the benchmarks and their figures are listed (data: one object a benchmark). */
export const SPECS_PATH = fileURLToPath(new URL('./benchmarkSpecs.json', import.meta.url));

/** The benchmarks and the figures published of each, in page order (benchmarkSpecs.json). */
export const BENCH_SPECS: readonly BenchSpec[] = readSpecs(SPECS_PATH);

/** The specs in `path`; throws naming the first entry that is not a {@link BenchSpec}. */
function readSpecs(path: string): BenchSpec[] {
  const specs = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  if (!Array.isArray(specs)) throw new Error(`${path}: not a list of benchmarks`);
  const text = (value: unknown): boolean => typeof value === 'string' && value !== '';
  specs.forEach((spec: Partial<BenchSpec>, i) => {
    const figures: unknown[] = Array.isArray(spec.figures) ? spec.figures : [];
    const figureOk = (f: unknown): boolean => {
      const { key, label, target } = f as Partial<FigureSpec>;
      return text(key) && text(label) && (target === undefined || text(target));
    };
    if (!text(spec.bench) || !text(spec.what) || figures.length === 0 || !figures.every(figureOk))
      throw new Error(
        `${path}: entry ${i} is not { bench, what, figures: [{ key, label, target? }] }`,
      );
  });
  return specs as BenchSpec[];
}

/** The recorded run of `bench`, if there is one. */
export function readResult(bench: string, dir = RESULTS_DIR): BenchRecord | undefined {
  const path = `${dir}${bench}.json`;
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as BenchRecord) : undefined;
}

const shown = (value: unknown): string => {
  if (typeof value !== 'number') return value === undefined ? '(missing)' : JSON.stringify(value);
  return Number.isInteger(value) ? value.toLocaleString('en-US') : String(value);
};

function section(spec: BenchSpec, record: BenchRecord | undefined): string[] {
  const out = [`## ${spec.bench}`, '', spec.what, ''];
  if (record === undefined) {
    return [...out, `No recorded run yet: \`npm run bench -- ${spec.bench}\`.`, ''];
  }
  const m = record.machine;
  const load = (l: readonly number[]): string => l.join(' / ');
  const passed = record.verdicts.filter((v) => v.ok).length;
  out.push(
    `\`npm run bench -- ${[spec.bench, ...record.args].join(' ')}\`, ${record.date.slice(0, 16).replace('T', ' ')} UTC, commit \`${record.commit}\`, ${record.durationSeconds} s: ${m.cores} cores (${m.cpu}), Node ${m.node}, nats-server ${m.natsServer}, etcd ${m.etcd}; load average (1 / 5 / 15 min) ${load(m.loadAverage.start)} at the start, ${load(m.loadAverage.end)} at the end. Verdicts: ${passed} of ${record.verdicts.length} passed.`,
    '',
  );
  if (record.quick) {
    out.push(
      "**Quick run** (`--quick`: the small sizes CI runs): these figures are not comparable with a full run's.",
      '',
    );
  }
  const label = (text: string): string =>
    text.replace(/\{(\w+)\}/g, (_, key: string) => shown(record.figures[key]));
  out.push('| figure | value | key | target |', '|---|---:|---|---|');
  for (const f of spec.figures) {
    out.push(
      `| ${label(f.label)} | ${shown(record.figures[f.key])} | \`${f.key}\` | ${f.target ?? ''} |`,
    );
  }
  return [...out, ''];
}

/** The whole page, from the results in `dir`. */
export function benchmarksText(dir = RESULTS_DIR): string {
  return [
    '# Benchmarks',
    '',
    '<!-- Generated from bench/results/*.json by `npm run docs`; a test checks it is current. -->',
    '',
    'Each figure below is from the last recorded run of its benchmark (`npm run bench -- NAME`',
    'writes `bench/results/NAME.json`), with the machine, load average, date and commit it was',
    'measured on. The machine is a shared 2-core development VM: the load average says how shared',
    'it was. Every benchmark also has a `--quick` mode that CI runs (`test/e2e/bench.e2e.test.ts`),',
    'which checks its verdicts (no acknowledged write lost, digests equal, every figure produced),',
    'not its speed. The keys are those of the JSON each run prints as its last line.',
    '',
    ...BENCH_SPECS.flatMap((spec) => section(spec, readResult(spec.bench, dir))),
  ].join('\n');
}

/** Figures the page lists that a recorded run lacks, as `bench.key`. */
export function missingFromResults(dir = RESULTS_DIR): string[] {
  return BENCH_SPECS.flatMap((spec) => {
    const record = readResult(spec.bench, dir);
    if (record === undefined) return [];
    return spec.figures
      .filter((f) => typeof record.figures[f.key] !== 'number')
      .map((f) => `${spec.bench}.${f.key}`);
  });
}
