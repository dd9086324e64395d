// `npm run bench -- fold [--quick]`: how fast the domain folds, and how much heap a state uses.
//
// Measures, each 3 times (median reported):
// - build: folding PUT_START+PUT_END for N objects into an empty state (N = 100k, 1M);
// - steady: folding a workload (PUT_START of a new key, PUT_END, REMOVE of an old key) against
//   a state holding N complete objects, one event at a time (`fold`) and in batches of 100
//   (`foldAll`);
// - decide+fold per command (us) at N objects;
// - heap bytes per object: heapUsed difference (after `global.gc()`) over a 1M-object state.
// Verdict: each build holds its N objects. `--quick` (CI): 10k and 20k objects.
// `--10m` also builds 10M objects once (minutes, ~5 GB of heap): heap bytes per object, the
// steady batch fold against it, and the longest GC pause while building and folding (a
// PerformanceObserver on 'gc' entries).
import { PerformanceObserver } from 'node:perf_hooks';
import { decide, type DecideContext } from '../src/domain/decide/decide.ts';
import { fold, foldAll } from '../src/domain/fold/fold.ts';
import { emptyState } from '../src/domain/model/state.ts';
import type {
  Command,
  LoggedEvent,
  MetadataEvent,
  MetadataState,
  Replica,
} from '../src/domain/model/types.ts';
import { verdict, type BenchOutcome } from './lib/report.ts';

const SEGMENTS = 8;
const REPLICAS = 2;
const OBJECT_SIZE = 4096;
const SEGMENT_SIZE = 2 ** 44;
const BATCH = 100;
const RUNS = 3;
const noLeases: DecideContext = { isReadLeased: () => false };

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with --expose-gc (npm run bench does)');
  collect();
  collect();
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * Synthetic placement (what decide would choose is irrelevant to the fold's speed): object i
 * gets REPLICAS replicas on segments i, i+1, ... (mod SEGMENTS), each at that segment's next
 * free offset.
 */
class Workload {
  readonly #next = new Array<number>(SEGMENTS).fill(0);
  #created = 0;

  mounts(): MetadataEvent[] {
    return Array.from({ length: SEGMENTS }, (_, g) => ({
      op: 'MOUNT_SEGMENT' as const,
      segmentId: `segment-${g}`,
      nodeId: `node-${g}`,
      size: SEGMENT_SIZE,
    }));
  }

  /** PUT_START of a new key. */
  put(): { key: string; event: MetadataEvent } {
    const i = this.#created++;
    const replicas: Replica[] = [];
    for (let r = 0; r < REPLICAS; r++) {
      const g = (i + r) % SEGMENTS;
      const offset = this.#next[g] ?? 0;
      this.#next[g] = offset + OBJECT_SIZE;
      replicas.push({
        segmentId: `segment-${g}`,
        nodeId: `node-${g}`,
        offset,
        length: OBJECT_SIZE,
        status: 'processing',
      });
    }
    const key = `bench/object/${i.toString(36)}`;
    return { key, event: { op: 'PUT_START', key, size: OBJECT_SIZE, replicas } };
  }

  get created(): number {
    return this.#created;
  }
}

/** Streams the events that build `n` complete objects, in chunks (the log is never held whole). */
function* buildEvents(workload: Workload, n: number): Generator<MetadataEvent> {
  yield* workload.mounts();
  for (let i = 0; i < n; i++) {
    const { key, event } = workload.put();
    yield event;
    yield { op: 'PUT_END', key };
  }
}

function* logged(events: Iterable<MetadataEvent>, firstSeq: number): Generator<LoggedEvent> {
  let seq = firstSeq;
  for (const event of events) yield { seq: seq++, epoch: 1, ts: 0, event };
}

function foldStream(
  state: MetadataState,
  stream: Iterable<LoggedEvent>,
  batch: number,
): MetadataState {
  let s = state;
  let chunk: LoggedEvent[] = [];
  for (const item of stream) {
    chunk.push(item);
    if (chunk.length === batch) {
      s = batch === 1 ? fold(s, chunk[0] as LoggedEvent) : foldAll(s, chunk);
      chunk = [];
    }
  }
  if (chunk.length > 0) s = foldAll(s, chunk);
  return s;
}

/** The steady workload: new object put and completed, an old one removed (count stays N). */
function steadyEvents(workload: Workload, entries: number, oldest: number): MetadataEvent[] {
  const events: MetadataEvent[] = [];
  let victim = oldest;
  while (events.length < entries) {
    const { key, event } = workload.put();
    events.push(
      event,
      { op: 'PUT_END', key },
      { op: 'REMOVE', key: `bench/object/${(victim++).toString(36)}` },
    );
  }
  return events.slice(0, entries);
}

interface SizeResult {
  objects: number;
  /** Objects in the state the build folded (its N when the fold is right). */
  builtObjects: number;
  buildPerSec: number;
  foldPerSec: number;
  foldBatchPerSec: number;
  decideFoldUs: number;
}

function measureSize(n: number, steadyEntries: number): SizeResult {
  const buildRates: number[] = [];
  let base = emptyState();
  let workload = new Workload();
  for (let run = 0; run < RUNS; run++) {
    workload = new Workload();
    gc();
    const start = performance.now();
    base = foldStream(emptyState(), logged(buildEvents(workload, n), 1), BATCH);
    buildRates.push(base.appliedSeq / ((performance.now() - start) / 1000));
  }
  // The steady workload runs against the same frozen base each time (it is never changed).
  const log = [...logged(steadyEvents(workload, steadyEntries, 0), base.appliedSeq + 1)];
  const rate = (batch: number): number => {
    const rates: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      gc();
      const start = performance.now();
      const end = foldStream(base, log, batch);
      rates.push(log.length / ((performance.now() - start) / 1000));
      if (end.objectCount < n - log.length) throw new Error('workload went wrong');
    }
    return median(rates);
  };
  const foldPerSec = rate(1);
  const foldBatchPerSec = rate(BATCH);

  // decide + fold, one command at a time, against the base (real placement by decide).
  const us: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let s = base;
    const commands = 3000;
    gc();
    const start = performance.now();
    for (let i = 0; i < commands / 3; i++) {
      const key = `bench/decided/${run}/${i}`;
      const steps: Command[] = [
        { type: 'putStart', key, size: OBJECT_SIZE, replicaNum: 2 },
        { type: 'putEnd', key },
        { type: 'remove', key: `bench/object/${(i + run * commands).toString(36)}` },
      ];
      for (const command of steps) {
        const d = decide(s, command, noLeases);
        if (!d.ok) throw d.error;
        s = fold(s, { seq: s.appliedSeq + 1, epoch: 1, ts: 0, event: d.event });
      }
    }
    us.push(((performance.now() - start) * 1000) / commands);
  }
  return {
    objects: n,
    builtObjects: base.objectCount,
    buildPerSec: median(buildRates),
    foldPerSec,
    foldBatchPerSec,
    decideFoldUs: median(us),
  };
}

function measureHeap(n: number): number {
  const perObject: number[] = [];
  const state: { current: MetadataState | undefined } = { current: undefined };
  for (let run = 0; run < RUNS; run++) {
    state.current = undefined; // release the previous run's state before measuring
    gc();
    const before = process.memoryUsage().heapUsed;
    state.current = foldStream(emptyState(), logged(buildEvents(new Workload(), n), 1), BATCH);
    gc();
    const after = process.memoryUsage().heapUsed;
    if (state.current.objectCount !== n) throw new Error('heap run went wrong');
    perObject.push((after - before) / n);
  }
  return median(perObject);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

interface TenMillion {
  heapBytesPerObject: number;
  foldBatchPerSec: number;
  buildPerSec: number;
  gcPauseMaxMs: number;
}

/** One build of `n` objects (heap measured on it) and the steady batch fold against it. */
async function measureTenMillion(n: number, steadyEntries: number): Promise<TenMillion> {
  let maxPause = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) maxPause = Math.max(maxPause, entry.duration);
  });
  gc();
  const before = process.memoryUsage().heapUsed;
  observer.observe({ entryTypes: ['gc'] });
  const workload = new Workload();
  const start = performance.now();
  const base = foldStream(emptyState(), logged(buildEvents(workload, n), 1), BATCH);
  const buildPerSec = base.appliedSeq / ((performance.now() - start) / 1000);
  // GC entries arrive asynchronously: let the build's reach the observer, which stops before
  // the forced collections (gc()) that are the bench's, not the fold's.
  await new Promise((r) => setTimeout(r, 100));
  observer.disconnect();
  gc();
  const heapBytesPerObject = (process.memoryUsage().heapUsed - before) / n;
  if (base.objectCount !== n) throw new Error('10M build went wrong');
  const log = [...logged(steadyEvents(workload, steadyEntries, 0), base.appliedSeq + 1)];
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
    observer.observe({ entryTypes: ['gc'] });
    const t = performance.now();
    foldStream(base, log, BATCH);
    rates.push(log.length / ((performance.now() - t) / 1000));
    await new Promise((r) => setTimeout(r, 100));
    observer.disconnect();
  }
  return {
    heapBytesPerObject,
    foldBatchPerSec: median(rates),
    buildPerSec,
    gcPauseMaxMs: maxPause,
  };
}

export async function run(args: string[]): Promise<BenchOutcome> {
  const quick = args.includes('--quick');
  const small = quick ? 10_000 : 100_000;
  const large = quick ? 20_000 : 1_000_000;
  const steady = quick ? 5000 : 100_000;
  console.log(
    `fold benchmark: ${RUNS} runs each, median; node ${process.version}; objects of ${OBJECT_SIZE} B with ${REPLICAS} replicas, ${SEGMENTS} segments`,
  );
  // Heap first, while nothing else is alive.
  const heap = measureHeap(large);
  const results = [measureSize(small, steady), measureSize(large, steady)];
  console.log('');
  console.log(
    'objects    | build entries/s | fold entries/s (1 by 1) | foldAll entries/s (x100) | decide+fold us/cmd',
  );
  for (const r of results) {
    console.log(
      `${fmt(r.objects).padStart(10)} | ${fmt(r.buildPerSec).padStart(15)} | ${fmt(r.foldPerSec).padStart(23)} | ${fmt(r.foldBatchPerSec).padStart(24)} | ${r.decideFoldUs.toFixed(2).padStart(18)}`,
    );
  }
  console.log(
    `heap bytes per object (${fmt(large)} objects, heapUsed after gc): ${heap.toFixed(1)}`,
  );
  const [s, l] = results as [SizeResult, SizeResult];
  let ten: TenMillion | undefined;
  // The 10M size runs with --10m; --quick runs the same steps at a small size, so CI checks them.
  const huge = args.includes('--10m') ? 10_000_000 : quick ? 40_000 : undefined;
  if (huge !== undefined) {
    ten = await measureTenMillion(huge, steady);
    console.log(
      `${fmt(huge)} objects: build ${fmt(ten.buildPerSec)} entries/s, foldAll ${fmt(ten.foldBatchPerSec)} entries/s (x100), heap ${ten.heapBytesPerObject.toFixed(1)} B/object, longest GC pause ${ten.gcPauseMaxMs.toFixed(1)} ms`,
    );
  }
  return {
    figures: {
      smallObjects: s.objects,
      largeObjects: l.objects,
      foldPerSec100k: Math.round(s.foldPerSec),
      foldBatchPerSec100k: Math.round(s.foldBatchPerSec),
      buildPerSec100k: Math.round(s.buildPerSec),
      decideFoldUs100k: Number(s.decideFoldUs.toFixed(2)),
      foldPerSec1M: Math.round(l.foldPerSec),
      foldBatchPerSec1M: Math.round(l.foldBatchPerSec),
      buildPerSec1M: Math.round(l.buildPerSec),
      decideFoldUs: Number(l.decideFoldUs.toFixed(2)),
      heapBytesPerObject: Number(heap.toFixed(1)),
      ...(ten === undefined
        ? {}
        : {
            hugeObjects: huge,
            foldBatchPerSec10M: Math.round(ten.foldBatchPerSec),
            buildPerSec10M: Math.round(ten.buildPerSec),
            heapBytesPerObject10M: Number(ten.heapBytesPerObject.toFixed(1)),
            gcPauseMaxMs10M: Number(ten.gcPauseMaxMs.toFixed(1)),
          }),
    },
    verdicts: results.map((r) =>
      verdict(
        `the ${fmt(r.objects)}-object build holds its objects`,
        r.builtObjects === r.objects,
        `${fmt(r.builtObjects)} objects`,
      ),
    ),
  };
}
