// What a benchmark hands back (its figures and verdicts), and the record of a run: the figures
// with the machine they were measured on, printed as the last stdout line and, for a full run,
// written to bench/results/<bench>.json (docs/benchmarks.md is generated from those files).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

/** A check a benchmark makes of its own run (not of speed): a lost write, a digest, a crash. */
export interface Verdict {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
}

/** A benchmark's figures (numbers, or lists and records of them) and its verdicts. */
export interface BenchOutcome {
  readonly figures: Readonly<Record<string, unknown>>;
  readonly verdicts: readonly Verdict[];
}

/** A verdict that `ok` holds, with what was seen. */
export function verdict(name: string, ok: boolean, detail?: string): Verdict {
  return detail === undefined ? { name, ok } : { name, ok, detail };
}

/** Where a machine's run was measured: what the figures depend on besides the code. */
export interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly node: string;
  readonly natsServer: string;
  readonly etcd: string;
  /** 1, 5 and 15-minute load averages when the run started and when it ended. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
}

/** One run of one benchmark, as printed and as stored in bench/results/<bench>.json. */
export interface BenchRecord {
  readonly bench: string;
  /** A `--quick` run: small sizes, for CI; its figures are not comparable with a full run's. */
  readonly quick: boolean;
  readonly args: readonly string[];
  /** When the run started (ISO 8601). */
  readonly date: string;
  readonly durationSeconds: number;
  /** The commit measured, with `-dirty` when the tree had changes (results files aside). */
  readonly commit: string;
  readonly machine: Machine;
  readonly figures: Readonly<Record<string, unknown>>;
  readonly verdicts: readonly Verdict[];
}

/** The directory of the published results. */
export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

const root = fileURLToPath(new URL('../../', import.meta.url));
const loads = (): number[] => loadavg().map((l) => Math.round(l * 100) / 100);

/** The first line `command args` prints, or `unknown`. */
function versionOf(command: string, args: readonly string[], pattern: RegExp): string {
  try {
    const out = execFileSync(command, args, { encoding: 'utf8', stdio: 'pipe' });
    return pattern.exec(out)?.[1] ?? out.split('\n')[0]?.trim() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function commitOf(): string {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: 'pipe' }).trim();
    const head = git('rev-parse', '--short=12', 'HEAD');
    const changes = git(
      'status',
      '--porcelain',
      '--',
      '.',
      ':!bench/results',
      ':!docs/benchmarks.md',
    );
    return changes === '' ? head : `${head}-dirty`;
  } catch {
    return 'unknown';
  }
}

/** Figures that could not be produced: not a finite number (null, NaN, undefined, Infinity). */
export function missingFigures(figures: Readonly<Record<string, unknown>>): string[] {
  const missing: string[] = [];
  const visit = (value: unknown, path: string): void => {
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) missing.push(path);
    } else if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${path}[${i}]`));
    else if (value !== null && typeof value === 'object')
      for (const [k, v] of Object.entries(value)) visit(v, `${path}.${k}`);
    else if (typeof value !== 'boolean' && typeof value !== 'string') missing.push(path);
  };
  for (const [key, value] of Object.entries(figures)) visit(value, key);
  return missing;
}

/** Starts timing a run of `bench`; `finish` makes its record from the outcome. */
export function startRecord(bench: string, args: readonly string[]) {
  const startedAt = new Date();
  const start = loads();
  // The commit the run measured: read at the start, as the build the nodes run is made then.
  const commit = commitOf();
  return (outcome: BenchOutcome): BenchRecord => {
    const missing = missingFigures(outcome.figures);
    return {
      bench,
      quick: args.includes('--quick'),
      args: [...args],
      date: startedAt.toISOString(),
      durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      commit,
      machine: {
        cores: availableParallelism(),
        cpu: cpus()[0]?.model ?? 'unknown',
        node: process.version,
        natsServer: versionOf('nats-server', ['--version'], /v?(\d+\.\d+\.\d+)/),
        etcd: versionOf('etcd', ['--version'], /etcd Version: (\S+)/),
        loadAverage: { start, end: loads() },
      },
      figures: outcome.figures,
      verdicts: [
        ...outcome.verdicts,
        verdict(
          'every figure produced',
          missing.length === 0,
          missing.length === 0 ? undefined : `not produced: ${missing.join(', ')}`,
        ),
      ],
    };
  };
}

/** Writes `record` to bench/results/<bench>.json; the path. */
export function saveRecord(record: BenchRecord): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = `${RESULTS_DIR}${record.bench}.json`;
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`);
  return path;
}
