// `npm run bench -- NAME [--quick] [--save] [args]`: runs bench/NAME.bench.ts. Each benchmark
// prints a readable table; then its verdicts (checks of its own run: no acknowledged write
// lost, digests equal, every figure produced) and, as the last stdout line, one JSON object: the
// run's record (figures, verdicts, machine, load average, date, commit; bench/lib/report.ts).
// A full run writes that record to bench/results/NAME.json (`npm run docs` renders
// docs/benchmarks.md from those files); a `--quick` run (small sizes, for CI) only with --save.
// Exits 1 when a verdict fails (and then writes nothing).
import { readdirSync } from 'node:fs';
import { saveRecord, startRecord, type BenchOutcome } from './lib/report.ts';
import { printTable } from './lib/table.ts';

const names = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name === undefined || !names.includes(name)) {
  console.error(`usage: npm run bench -- <${names.join('|')}> [--quick] [--save] [args]`);
  process.exit(2);
}
const finish = startRecord(name, args);
const bench = (await import(`./${name}.bench.ts`)) as {
  run(args: string[]): Promise<BenchOutcome | undefined>;
};
const outcome = await bench.run(args);
// A mode that measures nothing to publish (write --cpu-prof) hands back no outcome.
if (outcome !== undefined) {
  const record = finish(outcome);
  const failed = record.verdicts.filter((v) => !v.ok);
  console.log('');
  printTable(
    ['verdict', 'ok', 'detail'],
    record.verdicts.map((v) => [v.name, v.ok ? 'yes' : 'NO', v.detail ?? '']),
  );
  const save = failed.length === 0 && (!record.quick || args.includes('--save'));
  if (save) process.stderr.write(`bench: wrote ${saveRecord(record)}\n`);
  else if (failed.length > 0)
    process.stderr.write(`bench: ${failed.length} verdict(s) failed; no results written\n`);
  console.log('');
  console.log(JSON.stringify(record));
  if (failed.length > 0) process.exitCode = 1;
}
