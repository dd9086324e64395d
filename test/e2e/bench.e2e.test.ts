// Every benchmark's `--quick` mode, as CI runs it (small sizes, a few seconds to a minute each):
// the run exits 0, every verdict it makes of itself passes (no acknowledged write lost counting
// a trimmed stream, digests equal, every figure produced; bench/lib/report.ts), and every figure
// docs/benchmarks.md publishes of it is a number in its record. Not its speed: a benchmark whose
// instruments rot fails here, a slow machine does not.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BenchRecord } from '../../bench/lib/report.ts';
import { BENCH_SPECS } from '../../scripts/benchmarksDoc.ts';
import { packageRoot } from '../../src/process/packageInfo.ts';
import { runProcess } from '../harness/cli.ts';

/** Generous: the quick runs take 5-60 s each on an idle 2-core machine, more when it is shared. */
const TIMEOUT_MS = 6 * 60_000;

const benches = readdirSync(new URL('../../bench/', import.meta.url))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

/** Runs `npm run bench -- NAME --quick` (without its install and build steps). */
async function quickRun(name: string): Promise<{ record: BenchRecord; stderr: string }> {
  const result = await runProcess(
    process.execPath,
    ['--import', 'tsx', '--expose-gc', 'bench/run.ts', name, '--quick'],
    { cwd: packageRoot(), env: process.env, timeoutMs: TIMEOUT_MS - 10_000 },
  );
  const tail = `\nstderr tail:\n${result.stderr.slice(-3000)}`;
  expect(result.code, `exit code${tail}`).toBe(0);
  const last = result.stdout.trimEnd().split('\n').at(-1) ?? '';
  return { record: JSON.parse(last) as BenchRecord, stderr: tail };
}

describe('benchmarks, --quick', () => {
  it('every benchmark has a page section (its published figures)', () => {
    expect(BENCH_SPECS.map((s) => s.bench).sort()).toEqual(benches);
  });

  for (const spec of BENCH_SPECS) {
    it(
      `${spec.bench}: exits 0, its verdicts pass, every published figure is produced`,
      async () => {
        const { record, stderr } = await quickRun(spec.bench);
        expect(record).toMatchObject({ bench: spec.bench, quick: true });
        expect(
          record.verdicts.filter((v) => !v.ok),
          stderr,
        ).toEqual([]);
        expect(record.verdicts.map((v) => v.name)).toContain('every figure produced');
        for (const { key } of spec.figures) {
          expect(Number.isFinite(record.figures[key]), `figure ${key}`).toBe(true);
        }
      },
      TIMEOUT_MS,
    );
  }
});
