// The write bench's focused modes (`npm run bench -- write --focus batch|cpu`): one question
// each, on one cluster, its loads alternating run by run so that a shared machine's load moves
// both sides alike. They print their figures and publish nothing (no record is written).
//
// - `batch`: putStart calls coalesced by the client (C outstanding, default 256) against
//   putStartBatch x100 requests (B outstanding, default 8), `--runs` times each (default 3),
//   alternating; the medians and their ratio batch / single.
// - `cpu`: the primary's CPU time per committed write at the fixed open-loop rates of the full
//   bench (putStart at 2,000 and 8,000/s, putStartBatch x100 at 8,000 writes/s), `--cpu-writes`
//   writes a run (default 20,000), the median of `--runs` runs.
// - `lag`: the standby's lag with and without an automatic checkpoint in the window
//   (lib/lagFocus.ts).
import { loadavg } from 'node:os';
import { numberFlag } from './args.ts';
import { BenchServers } from './cluster.ts';
import { median, ms, round } from './stats.ts';
import { lagFocus } from './lagFocus.ts';
import { printTable } from './table.ts';
import {
  BATCH_ITEMS,
  batchCall,
  log,
  measure,
  primaryCpu,
  singleCall,
  withCluster,
  type Figures,
} from './writeLoads.ts';

const ratio2 = (n: number): number => Math.round(n * 100) / 100;

function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

async function batchAgainstSingle(servers: BenchServers, args: readonly string[]): Promise<void> {
  const runs = numberFlag(args, '--runs', 3);
  const seconds = numberFlag(args, '--seconds', 5);
  const singleC = numberFlag(args, '--single-concurrency', 256);
  const batchC = numberFlag(args, '--batch-concurrency', 8);
  const loadBefore = loadAverage();
  const { single, batch } = await withCluster(servers, 1, 'nats', async (cluster) => {
    const single: Figures[] = [];
    const batch: Figures[] = [];
    for (let r = 0; r < runs; r++) {
      const s = await measure(
        cluster.primary,
        singleCall(cluster.client, `single-${r}`),
        singleC,
        seconds,
      );
      log(`  run ${r + 1}: putStart c=${singleC}: ${round(s.perSec)} writes/s`);
      single.push(s);
      const b = await measure(
        cluster.primary,
        batchCall(cluster.client, `batch-${r}`),
        batchC,
        seconds,
      );
      log(`  run ${r + 1}: putStartBatch x${BATCH_ITEMS} c=${batchC}: ${round(b.perSec)} writes/s`);
      batch.push(b);
    }
    return { single, batch };
  });
  const row = (name: string, f: readonly Figures[]): (string | number)[] => [
    name,
    round(median(f.map((x) => x.perSec))),
    f.map((x) => round(x.perSec)).join(' / '),
    ms(median(f.map((x) => x.p99Ms))),
    round(median(f.map((x) => x.primaryCpuPct))),
    round(median(f.map((x) => x.clientCpuPct))),
  ];
  console.log(
    `batch against single calls: ${runs} alternating runs of ${seconds} s on one cluster ` +
      `(1 primary, 1 standby); load average before ${loadBefore}, after ${loadAverage()}`,
  );
  printTable(
    ['load', 'writes/s (median)', 'runs', 'p99 ms', 'primary CPU %', 'client CPU %'],
    [
      row(`putStart, coalesced, ${singleC} outstanding`, single),
      row(`putStartBatch x${BATCH_ITEMS}, ${batchC} outstanding`, batch),
    ],
  );
  const ratio = median(batch.map((b) => b.perSec)) / median(single.map((s) => s.perSec));
  console.log(`batch / single: ${ratio2(ratio)}`);
}

async function cpuPerWrite(servers: BenchServers, args: readonly string[]): Promise<void> {
  const runs = numberFlag(args, '--runs', 3);
  const cpuWrites = numberFlag(args, '--cpu-writes', 20_000);
  const loadBefore = loadAverage();
  const results = await primaryCpu(
    servers,
    1,
    [
      { ratePerSec: 2000, batch: false },
      { ratePerSec: 8000, batch: false },
      { ratePerSec: 8000, batch: true },
    ],
    { runs, cpuWrites },
  );
  console.log(
    `primary CPU per committed write: ${cpuWrites} writes a run, median of ${runs}, 1 standby; ` +
      `load average before ${loadBefore}, after ${loadAverage()}`,
  );
  printTable(
    ['load', 'us/write', 'writes/s asked', 'writes/s achieved', 'failures'],
    results.map((c) => [
      c.batch ? `putStartBatch x${BATCH_ITEMS}` : 'putStart',
      ms(c.usPerWrite),
      c.ratePerSec,
      round(c.perSec),
      c.failures,
    ]),
  );
}

/** Runs the focused mode `focus` (`batch`, `cpu` or `lag`); see the module doc. */
export async function runFocus(focus: string, args: readonly string[]): Promise<void> {
  await using servers = await BenchServers.start();
  if (focus === 'batch') await batchAgainstSingle(servers, args);
  else if (focus === 'cpu') await cpuPerWrite(servers, args);
  else if (focus === 'lag') await lagFocus(servers, args);
  else throw new Error(`--focus ${focus}: expected batch, cpu or lag`);
}
