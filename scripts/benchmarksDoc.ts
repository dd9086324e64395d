// docs/benchmarks.md, generated from the benchmarks' recorded runs (bench/results/<bench>.json,
// written by each full `npm run bench -- NAME`): the figures as measured, with the machine, load
// average, date and commit of each run. test/unit/generatedDocs.unit.test.ts fails when the
// checked-in page and the results disagree, or a figure listed here is missing from them.
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

/** The benchmarks and the figures published of each, in page order. */
export const BENCH_SPECS: readonly BenchSpec[] = [
  {
    bench: 'fold',
    what: 'The pure domain fold in one process: building a state, then a steady put/complete/remove workload against it, one entry at a time and in batches of 100; heap per object.',
    figures: [
      {
        key: 'foldBatchPerSec1M',
        label: 'entries/s folded in batches of 100 at {largeObjects} objects',
        target: '>= 200,000',
      },
      { key: 'foldPerSec1M', label: 'entries/s folded one at a time at {largeObjects} objects' },
      { key: 'buildPerSec1M', label: 'entries/s building a {largeObjects}-object state' },
      { key: 'decideFoldUs', label: 'us of decide + fold per command at {largeObjects} objects' },
      {
        key: 'foldBatchPerSec100k',
        label: 'entries/s folded in batches of 100 at {smallObjects} objects',
      },
      {
        key: 'heapBytesPerObject',
        label: 'heap bytes per object ({largeObjects} objects)',
        target: '<= 1,024',
      },
    ],
  },
  {
    bench: 'log',
    what: 'OpLog appends (200-byte payloads, 1,000 in flight) on NATS JetStream R1 and R3, group-committed and one entry per message; the follower read rate; the etcd OpLog as a baseline; and R1 with an OpLog key (signed).',
    figures: [
      { key: 'appendPerSecR1', label: 'entries/s appended, NATS R1, group commit <= 100' },
      { key: 'appendP99MsR1', label: 'ms append p99, NATS R1, group commit' },
      { key: 'appendPerSecR3', label: 'entries/s appended, NATS R3, group commit <= 100' },
      { key: 'appendP99MsR3', label: 'ms append p99, NATS R3, group commit' },
      { key: 'appendPerSecR1Batch1', label: 'entries/s appended, NATS R1, 1 entry per message' },
      { key: 'followPerSec', label: 'entries/s read by a follower ({followEntries} entries)' },
      { key: 'etcdOplogPerSec', label: 'entries/s appended, etcd OpLog (64 in flight)' },
      { key: 'ratioVsEtcd', label: 'NATS R1 / etcd OpLog' },
      { key: 'signedRatioR1', label: 'signed / unsigned appends, NATS R1' },
      { key: 'signedRatioFollow', label: 'signed / unsigned follower reads' },
    ],
  },
  {
    bench: 'write',
    what: 'Committed writes through the client library against node processes (1 primary, 1 standby, objects of 1 replica). `putStart` calls are coalesced into batch requests by the client library (its default) unless the row says uncoalesced (`coalesce: false`: one request per call); `putStartBatch` is the explicit batch API.',
    figures: [
      {
        key: 'writesPerSec',
        label: 'putStart writes/s, coalesced, {peakConcurrency} outstanding (peak)',
        target: '>= 20,000',
      },
      { key: 'p50Ms', label: 'ms p50 of those calls' },
      { key: 'p99Ms', label: 'ms p99 of those calls' },
      {
        key: 'writesPerSecUncoalesced',
        label:
          'putStart writes/s, uncoalesced (one request a call), {uncoalescedConcurrency} outstanding',
      },
      { key: 'p99MsUncoalesced', label: 'ms p99 of those calls' },
      { key: 'writesPerSecBatch', label: 'writes/s through putStartBatch of 100 items' },
      {
        key: 'baselinePerSec',
        label: 'putStart writes/s, coalesced, on the etcd OpLog (same node logic)',
      },
      { key: 'ratio', label: 'NATS / etcd OpLog, putStart', target: '>= 4' },
      {
        key: 'lagP99Entries',
        label: 'replication lag p99, entries, at {lagRatePerSec} writes/s (80 % of peak)',
        target: '< 100',
      },
      { key: 'lagP99Ms', label: 'replication lag p99, ms (ack to standby applied, upper bound)' },
      {
        key: 'primaryCpuUsPerWriteAt2000',
        label: 'primary CPU us per write, putStart at 2,000/s (1 standby)',
      },
      {
        key: 'primaryCpuUsPerWriteAt8000',
        label:
          'primary CPU us per write, putStart at 8,000/s (achieved {primaryCpuAchievedPerSecAt8000}/s)',
      },
      {
        key: 'primaryCpuUsPerWriteBatch',
        label: 'primary CPU us per write, putStartBatch x100 at 8,000 writes/s',
      },
      {
        key: 'primaryCpuUsPerWrite1',
        label:
          'primary CPU us per write at {primaryCpuRatePerSec}/s (40 % of the coalesced peak), 1 standby',
      },
      { key: 'primaryCpuUsPerWrite4', label: 'the same with 4 standbys' },
      { key: 'sessionsThroughputRatio', label: 'putStart writes/s with client sessions / without' },
      { key: 'sessionHeapBytes', label: 'heap bytes per client session (1 result kept)' },
    ],
  },
  {
    bench: 'failover',
    what: "Three node processes (lease TTL 2 s) under a steady write load (8 writers): the primary killed (kill -9), stopped (SIGTERM: a planned switchover) and paused (SIGSTOP twice the TTL); then every acknowledged write is looked up in the log, or in the state below the stream's first seq (checkpoints trim the stream).",
    figures: [
      {
        key: 'rtoP50Ms',
        label:
          'ms from kill -9 to the first acknowledged write of the new primary, p50 ({kills} kills)',
      },
      { key: 'rtoMaxMs', label: 'ms, the same, max', target: '<= TTL + 500 (2,500)' },
      {
        key: 'switchoverP50Ms',
        label:
          'ms from SIGTERM to the first ack of the new primary, p50 ({switchovers} switchovers)',
      },
      { key: 'switchoverMaxMs', label: 'ms, the same, max', target: '< 300' },
      {
        key: 'pauseThroughputRatio',
        label: 'acks/s from TTL + 1 s into a SIGSTOP / before it ({pauses} pauses)',
      },
      { key: 'ackedWrites', label: 'writes acknowledged' },
      { key: 'lostAckedWrites', label: 'acknowledged writes lost', target: '0' },
      { key: 'historyBreaks', label: 'breaks of the linear history', target: '0' },
      { key: 'streamFirstSeq', label: 'first seq of the stream at the end (above 1: trimmed)' },
    ],
  },
  {
    bench: 'sync',
    what: 'Full sync and verification over a real nats-server: a worker thread plays a primary that keeps folding writes during each sync; the main thread fetches, rebuilds and checks the digest.',
    figures: [
      {
        key: 'fullSync1MMs',
        label: 'ms for a full sync of {largeObjects} objects while the primary writes',
        target: '< 10,000',
      },
      { key: 'fullSync1MBytes', label: 'bytes of that sync' },
      { key: 'fullSync100kMs', label: 'ms for a full sync of {smallObjects} objects' },
      {
        key: 'verifyRoundMs',
        label:
          'ms of the primary per verification round at {largeObjects} objects, shards first seen',
      },
      { key: 'verifyRoundWarmMs', label: 'the same, shards unchanged', target: '< 20' },
      { key: 'verifyRoundChangedMs', label: 'the same, one write in each sampled shard' },
    ],
  },
  {
    bench: 'coldstart',
    what: "Durable restarts of node processes: a history of synthetic objects seeded as an elected primary writes it, a standby re-folding it all, writing checkpoints, and cold-starting from the newest checkpoint plus a tail; the primary's write rate while a standby writes a checkpoint.",
    figures: [
      {
        key: 'coldStartCheckpointMs',
        label:
          'ms from spawn to eligible standby, from a checkpoint + {tailEntries}-entry tail, {objects} objects',
        target: '< 5,000 at 1M',
      },
      { key: 'checkpointLoadMs', label: 'ms of that to the checkpoint loaded' },
      {
        key: 'coldStartRefoldMs',
        label: 'ms from spawn to eligible standby, re-folding {historyEntries} entries',
      },
      { key: 'checkpointWriteMs', label: 'ms to write a checkpoint (no other load)' },
      { key: 'checkpointBytes', label: 'bytes of a checkpoint' },
      {
        key: 'writeRatioDuringCheckpoint',
        label: 'primary writes/s while a standby writes a checkpoint / outside',
        target: '>= 0.9',
      },
    ],
  },
  {
    bench: 'chunkCodec',
    what: 'The binary checkpoint chunk codec against the JSON one, encoding and decoding every chunk (10,000 records each) of a state.',
    figures: [
      { key: 'binaryEncodeMs', label: 'ms to encode {objects} objects, binary' },
      { key: 'binaryDecodeMs', label: 'ms to decode them, binary' },
      { key: 'binaryBytes', label: 'bytes, binary' },
      { key: 'jsonEncodeMs', label: 'ms to encode, JSON' },
      { key: 'jsonDecodeMs', label: 'ms to decode, JSON' },
      { key: 'jsonBytes', label: 'bytes, JSON' },
    ],
  },
];

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
