// `npm run bench -- write [--quick] [--seconds N]`: committed writes through the client library
// against master nodes running as processes (one primary, one standby; objects with 1 replica).
//
// Measures:
// - putStart calls: `putStart` with C calls outstanding (closed loop), C in 64/128/256; the
//   peak C is run again, figures are the median of 3 runs at it (writes/s, latency p50/p99 of
//   the calls acknowledged in the window). The client library coalesces concurrent single calls
//   into batch requests (its default), so these are coalesced figures (`writesPerSec`);
// - the same calls uncoalesced (client option `coalesce: false`: one request per call), at
//   C = 256 (`writesPerSecUncoalesced`);
// - batch requests: `putStartBatch` of 100 items, 8 or 32 outstanding, the same way;
// - the same with `--oplog etcd` (the same node logic over the etcd-transaction OpLog): the
//   baseline, and the ratio NATS / etcd (putStart calls);
// - replication lag at 80 % of the putStart peak (measured on the lag phase's own fresh
//   cluster just before; open loop): entries (the primary's and the standby's /status
//   appliedSeq, sampled together every 50 ms) and ms (from a write's ack at the client to the
//   first /status of the standby, polled every 10 ms, that shows its seq applied: an upper
//   bound, within ~10 ms);
// - event-loop delay (each node's perf_hooks.monitorEventLoopDelay, p99 and max of its last 10 s
//   read from its /metrics) of the primary and the standby, on the lag phase's cluster right
//   after it: open loop at the lag phase's rate for its seconds while the standby writes a
//   checkpoint (`understudy checkpoint create`, 0.5 s in). With --quick the 10 s also hold the
//   end of the lag phase;
// - the primary's CPU time (/proc utime + stime) per committed write over a fixed workload
//   (20,000 putStart, open loop at 40 % of the coalesced peak, so both clusters see the
//   same rate and group commits), with 1 and with 4 standbys (median of 3); and with 1 standby
//   at fixed rates, 2,000 and 8,000 putStart/s (comparable between runs and machines), and
//   8,000 writes/s as putStartBatch x100 (80 batches/s: the batch path);
// - what client sessions cost: putStart calls at the peak concurrency with sessions (every
//   client call) and without (the same requests with their `session` stripped, so nothing is
//   deduplicated), alternating on one cluster, median of 3 each;
// - the session table's heap per session (in this process: a state whose objects were written
//   through sessions against the same objects written without).
// Each phase runs on a fresh cluster (fresh nodes and stream), on one etcd and one nats-server.
// Verdicts: every phase committed writes. `--quick` (CI): 2 s windows, 1 run, c = 256 only.
//
// `--cpu-prof DIR [--profile-load single|batch|rate:N]` runs only a profile: the nodes run under
// `node --cpu-prof`, a closed-loop load at 256 single requests (or 32 batches) outstanding, or
// an open loop of N single requests a second (as `--focus cpu` measures), runs for
// `--seconds`, the nodes stop gracefully (so they write their profiles to DIR), and the top of
// the primary's profile is printed.
//
// `--focus batch|cpu|lag` runs one focused comparison and publishes nothing (lib/writeFocus.ts):
// coalesced putStart calls against putStartBatch requests alternating on one cluster, or the
// primary's CPU per write at the fixed rates.
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { createNatsApiClientTransport } from '../src/adapters/nats/natsApiTransport.ts';
import { createClient } from '../src/client/nats.ts';
import { foldAll } from '../src/domain/fold/fold.ts';
import { emptyState } from '../src/domain/model/state.ts';
import type { LoggedEvent, MetadataState } from '../src/domain/model/types.ts';
import { withoutSessions } from '../test/harness/withoutSessions.ts';
import { numberFlag } from './lib/args.ts';
import { verdict, type BenchOutcome } from './lib/report.ts';
import { BenchCluster, BenchServers } from './lib/cluster.ts';
import { openLoop, type BenchCall } from './lib/load.ts';
import { lagRun, type LagRun } from './lib/lagRun.ts';
import { formatProfile, monotonicUs, profileOfPid, summariseProfile } from './lib/cpuProfile.ts';
import { median, ms, ratio1, round } from './lib/stats.ts';
import {
  BATCH_ITEMS,
  LEASE_TTL_MS,
  OBJECT_SIZE,
  batchCall,
  log,
  measure,
  medianFigures,
  primaryCpu,
  singleCall,
  withCluster,
  type CpuPerWrite,
  type Figures,
  type OpLogKind,
} from './lib/writeLoads.ts';
import { printTable } from './lib/table.ts';
import { runFocus } from './lib/writeFocus.ts';
import { loopDelayDuringCheckpoint, type LoopDelayRun } from './lib/loopDelay.ts';

/** The CPU-per-write workload runs at this share of the coalesced putStart peak. */
const CPU_RATE_SHARE = 0.4;
/** Fixed open-loop rates (putStart/s) of the CPU-per-write figures comparable between runs. */
const FIXED_CPU_RATES = [2000, 8000] as const;
/** Outstanding calls of the uncoalesced figure. */
const UNCOALESCED_CONCURRENCY = 256;

interface Settings {
  readonly quick: boolean;
  readonly seconds: number;
  readonly runs: number;
  readonly singleConcurrency: readonly number[];
  readonly batchConcurrency: readonly number[];
  readonly lagSeconds: number;
  readonly cpuWrites: number;
}

const ratio2 = (n: number): number => Math.round(n * 100) / 100;

/** Probes each concurrency once, then runs the peak one until it has `runs` runs; the median. */
async function peak(
  label: string,
  cluster: BenchCluster,
  makeCall: (prefix: string) => BenchCall,
  concurrencies: readonly number[],
  settings: Settings,
): Promise<{ best: Figures; probes: Figures[] }> {
  const probes: Figures[] = [];
  for (const c of concurrencies) {
    const f = await measure(cluster.primary, makeCall(`${label}-c${c}-probe`), c, settings.seconds);
    log(`  ${label} c=${c}: ${round(f.perSec)} writes/s, p99 ${ms(f.p99Ms)} ms`);
    probes.push(f);
  }
  const top = probes.reduce((a, b) => (b.perSec > a.perSec ? b : a));
  const runs = [top];
  for (let r = 1; r < settings.runs; r++) {
    const f = await measure(
      cluster.primary,
      makeCall(`${label}-c${top.concurrency}-run${r}`),
      top.concurrency,
      settings.seconds,
    );
    log(`  ${label} c=${top.concurrency} run ${r + 1}: ${round(f.perSec)} writes/s`);
    runs.push(f);
  }
  return { best: medianFigures(runs), probes };
}

interface SessionCost {
  readonly withPerSec: number;
  readonly withoutPerSec: number;
  readonly withRuns: readonly number[];
  readonly withoutRuns: readonly number[];
}

/** Single requests at `concurrency` with and without sessions, alternating on one cluster. */
async function sessionCost(
  servers: BenchServers,
  concurrency: number,
  settings: Settings,
): Promise<SessionCost> {
  log(`client sessions: single requests at c=${concurrency} with and without sessions`);
  return withCluster(servers, 1, 'nats', async (cluster, name) => {
    const nc = await connect({ servers: servers.nats.url });
    const plain = await createClient({
      cluster: name,
      transport: withoutSessions(createNatsApiClientTransport({ nc, cluster: name })),
      requestTimeoutMs: 5000,
      deadlineMs: 60_000,
    });
    try {
      const withRuns: number[] = [];
      const withoutRuns: number[] = [];
      for (let r = 0; r < settings.runs; r++) {
        for (const [runs, client, label] of [
          [withRuns, cluster.client, 'with'],
          [withoutRuns, plain, 'without'],
        ] as const) {
          const f = await measure(
            cluster.primary,
            singleCall(client, `sessions-${label}-${r}`),
            concurrency,
            settings.seconds,
          );
          log(`  ${label} sessions run ${r + 1}: ${round(f.perSec)} writes/s`);
          runs.push(f.perSec);
        }
      }
      return {
        withPerSec: median(withRuns),
        withoutPerSec: median(withoutRuns),
        withRuns,
        withoutRuns,
      };
    } finally {
      await plain.close();
      await nc.close();
    }
  });
}

interface SessionHeap {
  readonly sessions: number;
  readonly resultsPerSession: number;
  readonly bytesPerSession: number;
}

/**
 * Heap of the session table per session: `sessions` sessions each with `results` results kept
 * (the client waits for that many calls), as the difference between a state whose putStarts
 * carried a session and one of the same putStarts without (median of 3).
 */
function sessionHeap(sessions: number, results: number): SessionHeap {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc (npm run bench does)');
  const build = (withSessions: boolean): MetadataState => {
    let state = emptyState();
    state = foldAll(state, [
      {
        seq: 1,
        epoch: 1,
        ts: 1_700_000_000_000,
        event: { op: 'MOUNT_SEGMENT', segmentId: 's', nodeId: 'n', size: 2 ** 50 },
      },
    ]);
    const batch: LoggedEvent[] = [];
    for (let n = 0; n < results; n++) {
      for (let s = 0; s < sessions; s++) {
        const seq = state.appliedSeq + batch.length + 1;
        const i = n * sessions + s;
        const entry: LoggedEvent = {
          seq,
          epoch: 1,
          ts: 1_700_000_000_000 + seq,
          event: {
            op: 'PUT_START',
            key: `object/${i}`,
            size: 4096,
            replicas: [
              { segmentId: 's', nodeId: 'n', offset: i * 4096, length: 4096, status: 'processing' },
            ],
          },
        };
        batch.push(
          withSessions
            ? {
                ...entry,
                origin: {
                  sessionId: s.toString(16).padStart(32, '0'),
                  requestNo: n + 1,
                  oldestPending: 1,
                },
              }
            : entry,
        );
        if (batch.length === 1000) {
          state = foldAll(state, batch);
          batch.length = 0;
        }
      }
    }
    return foldAll(state, batch);
  };
  const heapOf = (withSessions: boolean): number => {
    gc();
    const before = process.memoryUsage().heapUsed;
    const state = build(withSessions);
    gc();
    const used = process.memoryUsage().heapUsed - before;
    if (state.appliedSeq === 0) throw new Error('unreachable');
    return used;
  };
  const perSession: number[] = [];
  for (let r = 0; r < 3; r++) perSession.push((heapOf(true) - heapOf(false)) / sessions);
  return { sessions, resultsPerSession: results, bytesPerSession: median(perSession) };
}

interface Throughput {
  readonly single: Figures;
  readonly batch: Figures;
  readonly singleProbes: Figures[];
}

async function throughput(
  servers: BenchServers,
  oplog: OpLogKind,
  settings: Settings,
): Promise<Throughput> {
  log(`${oplog} OpLog: single requests`);
  const single = await withCluster(servers, 1, oplog, (cluster) =>
    peak(
      `${oplog}-single`,
      cluster,
      (p) => singleCall(cluster.client, p),
      settings.singleConcurrency,
      settings,
    ),
  );
  log(`${oplog} OpLog: batch requests`);
  const batch = await withCluster(servers, 1, oplog, (cluster) =>
    peak(
      `${oplog}-batch`,
      cluster,
      (p) => batchCall(cluster.client, p),
      settings.batchConcurrency,
      settings,
    ),
  );
  return { single: single.best, batch: batch.best, singleProbes: single.probes };
}

/** A lag run (lib/lagRun.ts) at 80 % of the peak measured just before, with what led to it. */
interface Lag extends Omit<LagRun, 'skipped'> {
  /** The single-request peak measured on the lag cluster just before (closed loop). */
  readonly peakPerSec: number;
  /** Rates tried before this one that the cluster could not sustain (the machine is shared). */
  readonly overloadedAt: readonly number[];
  /** The event-loop delay at this rate while the standby writes a checkpoint. */
  readonly loopDelay: LoopDelayRun;
}

/** How many times the lag phase lowers its rate when the cluster cannot sustain it. */
const LAG_RETRIES = 2;

/**
 * Measures the single-request peak at `concurrency` on a fresh cluster, then runs an open-loop
 * load at 80 % of it while sampling the standby's progress. A rate the cluster cannot sustain
 * (calls pile up; on a shared machine the peak moves) is retried at 80 % of what it achieved.
 */
async function replicationLag(
  servers: BenchServers,
  concurrency: number,
  settings: Settings,
): Promise<Lag> {
  return withCluster(servers, 1, 'nats', async (cluster, name) => {
    const standby = cluster.standbys[0];
    if (standby === undefined) throw new Error('no standby');
    const peakRun = await measure(
      cluster.primary,
      singleCall(cluster.client, 'lag-peak'),
      concurrency,
      settings.seconds,
    );
    const overloadedAt: number[] = [];
    let ratePerSec = peakRun.perSec * 0.8;
    for (let attempt = 0; ; attempt++) {
      log(
        `replication lag: peak here ${round(peakRun.perSec)}/s, open loop at ${round(ratePerSec)}/s`,
      );
      const run = await lagRun(cluster, standby, ratePerSec, settings.lagSeconds, `lag${attempt}`);
      const sustained = run.skipped === 0 && run.achievedPerSec >= 0.9 * ratePerSec;
      if (sustained || attempt >= LAG_RETRIES) {
        log(
          `event-loop delay: open loop at ${round(ratePerSec)}/s while ${standby.id} writes a checkpoint`,
        );
        const loopDelay = await loopDelayDuringCheckpoint(
          { cluster: name, etcd: servers.etcd.endpoint },
          cluster.primary,
          standby,
          singleCall(cluster.client, `loop${attempt}`),
          ratePerSec,
          settings.lagSeconds,
        );
        log(
          `  primary p99 ${ms(loopDelay.primary.p99Ms)} ms, max ${ms(loopDelay.primary.maxMs)} ms; ` +
            `standby max ${ms(loopDelay.standby.maxMs)} ms (longest GC pause ${ms(loopDelay.standby.gcMaxMs)} ms); checkpoint ${round(loopDelay.checkpointMs)} ms`,
        );
        return { ...run, peakPerSec: peakRun.perSec, overloadedAt, loopDelay };
      }
      log(`  not sustained: ${round(run.achievedPerSec)}/s achieved, ${run.skipped} skipped`);
      overloadedAt.push(ratePerSec);
      ratePerSec = run.achievedPerSec * 0.8;
    }
  });
}

/** Coalesced and uncoalesced putStart calls at `concurrency`, alternating on one cluster. */
async function uncoalesced(
  servers: BenchServers,
  concurrency: number,
  settings: Settings,
): Promise<{ coalesced: Figures; uncoalesced: Figures }> {
  log(`putStart at c=${concurrency}: one request per call (coalesce: false) and coalesced`);
  return withCluster(servers, 1, 'nats', async (cluster, name) => {
    const plain = await createClient({
      servers: servers.nats.url,
      cluster: name,
      coalesce: false,
      requestTimeoutMs: 5000,
      deadlineMs: 60_000,
    });
    try {
      const withRuns: Figures[] = [];
      const withoutRuns: Figures[] = [];
      for (let r = 0; r < settings.runs; r++) {
        for (const [runs, client, label] of [
          [withoutRuns, plain, 'uncoalesced'],
          [withRuns, cluster.client, 'coalesced'],
        ] as const) {
          const f = await measure(
            cluster.primary,
            singleCall(client, `${label}-${r}`),
            concurrency,
            settings.seconds,
          );
          log(`  ${label} run ${r + 1}: ${round(f.perSec)} writes/s, p99 ${ms(f.p99Ms)} ms`);
          runs.push(f);
        }
      }
      return { coalesced: medianFigures(withRuns), uncoalesced: medianFigures(withoutRuns) };
    } finally {
      await plain.close();
    }
  });
}

/** Profiles the primary under a closed-loop load; prints the top of its profile. */
async function profilePrimary(
  servers: BenchServers,
  dir: string,
  load: string,
  seconds: number,
): Promise<void> {
  const profileDir = resolve(dir);
  await using cluster = await BenchCluster.start(servers, {
    cluster: `bench${randomUUID().slice(0, 8)}`,
    nodeIds: ['n1', 'n2'],
    leaseTtlMs: LEASE_TTL_MS,
    extraArgs: ['--oplog', 'nats'],
    runtimeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir],
  });
  const pid = cluster.primary.pid ?? 0;
  const fromUs = monotonicUs();
  if (load.startsWith('rate:')) {
    const result = await openLoop(
      singleCall(cluster.client, 'profile'),
      Number(load.slice(5)),
      seconds,
    );
    console.log(
      `profiled ${load} load: ${round(result.writes / result.seconds)} writes/s, ${result.failures + result.skipped} failed or skipped`,
    );
  } else {
    const f =
      load === 'batch'
        ? await measure(cluster.primary, batchCall(cluster.client, 'profile'), 32, seconds)
        : await measure(cluster.primary, singleCall(cluster.client, 'profile'), 256, seconds);
    console.log(
      `profiled ${load} load: ${round(f.perSec)} writes/s, p99 ${ms(f.p99Ms)} ms, primary CPU ${round(f.primaryCpuPct)} %, client CPU ${round(f.clientCpuPct)} %`,
    );
  }
  const window = { fromUs, toUs: monotonicUs() };
  // A graceful stop writes the profile (the primary hands over first).
  await cluster.primary.terminate();
  for (const standby of cluster.standbys) await standby.terminate();
  const file = profileOfPid(profileDir, pid);
  console.log(`primary profile: ${file}`);
  console.log(formatProfile(summariseProfile(file, process.cwd(), window)));
}

export async function run(args: string[]): Promise<BenchOutcome | undefined> {
  const profileAt = args.indexOf('--cpu-prof');
  if (profileAt >= 0) {
    const dir = args[profileAt + 1];
    if (dir === undefined) throw new Error('--cpu-prof needs a directory');
    const loadAt = args.indexOf('--profile-load');
    const load = loadAt >= 0 ? (args[loadAt + 1] ?? '') : 'single';
    if (!/^(single|batch|rate:\d+)$/.test(load)) {
      throw new Error(`--profile-load ${load}: expected single, batch or rate:N`);
    }
    await using servers = await BenchServers.start();
    await profilePrimary(servers, dir, load, numberFlag(args, '--seconds', 10));
    return undefined;
  }
  const focusAt = args.indexOf('--focus');
  if (focusAt >= 0) {
    await runFocus(args[focusAt + 1] ?? '', args);
    return undefined;
  }
  const quick = args.includes('--quick');
  const settings: Settings = {
    quick,
    seconds: numberFlag(args, '--seconds', quick ? 2 : 5),
    runs: quick ? 1 : 3,
    singleConcurrency: quick ? [256] : [64, 128, 256],
    batchConcurrency: quick ? [8] : [8, 32],
    lagSeconds: quick ? 2 : 10,
    cpuWrites: quick ? 1000 : 20_000,
  };
  console.log(
    `write bench: nodes as processes (1 primary + 1 standby, lease TTL ${LEASE_TTL_MS} ms), ` +
      `putStart of ${OBJECT_SIZE}-byte objects with 1 replica; windows of ${settings.seconds} s, ` +
      `median of ${settings.runs} run(s) at the peak concurrency${quick ? ' (--quick)' : ''}`,
  );
  await using servers = await BenchServers.start();
  const nats = await throughput(servers, 'nats', settings);
  const etcd = await throughput(servers, 'etcd', settings);
  const lag = await replicationLag(servers, nats.single.concurrency, settings);
  const cpuRate = Math.max(100, Math.round((nats.single.perSec * CPU_RATE_SHARE) / 100) * 100);
  const fixed = FIXED_CPU_RATES.map((ratePerSec) => ({ ratePerSec, batch: false }));
  const batchRate = FIXED_CPU_RATES[FIXED_CPU_RATES.length - 1] ?? 8000;
  const [cpu1, ...cpu1Fixed] = (await primaryCpu(
    servers,
    1,
    [{ ratePerSec: cpuRate, batch: false }, ...fixed, { ratePerSec: batchRate, batch: true }],
    settings,
  )) as [CpuPerWrite, ...CpuPerWrite[]];
  const [cpu4] = (await primaryCpu(
    servers,
    4,
    [{ ratePerSec: cpuRate, batch: false }],
    settings,
  )) as [CpuPerWrite];
  const cpuBatch = cpu1Fixed.find((c) => c.batch) as CpuPerWrite;
  const cpuAt = (rate: number): CpuPerWrite =>
    cpu1Fixed.find((c) => !c.batch && c.ratePerSec === rate) as CpuPerWrite;
  const coalescing = await uncoalesced(servers, UNCOALESCED_CONCURRENCY, settings);
  const sessions = await sessionCost(servers, nats.single.concurrency, settings);
  const heap1 = sessionHeap(10_000, 1);
  const heap16 = sessionHeap(2_000, 16);

  console.log('');
  const row = (name: string, f: Figures): (string | number)[] => [
    name,
    f.concurrency,
    round(f.perSec),
    ms(f.p50Ms),
    ms(f.p99Ms),
    round(f.primaryCpuPct),
    round(f.clientCpuPct),
    f.failures,
  ];
  printTable(
    [
      'load',
      'outstanding',
      'writes/s',
      'p50 ms',
      'p99 ms',
      'primary CPU %',
      'client CPU %',
      'failures',
    ],
    [
      ...nats.singleProbes.map((f) => row('NATS OpLog, putStart, coalesced (probe)', f)),
      row('NATS OpLog, putStart, coalesced (peak, median)', nats.single),
      row('NATS OpLog, putStart, uncoalesced (one request a call)', coalescing.uncoalesced),
      row('NATS OpLog, putStart, coalesced (same cluster)', coalescing.coalesced),
      row(`NATS OpLog, putStartBatch x${BATCH_ITEMS}`, nats.batch),
      ...etcd.singleProbes.map((f) => row('etcd OpLog, putStart, coalesced (probe)', f)),
      row('etcd OpLog, putStart, coalesced (peak, median)', etcd.single),
      row(`etcd OpLog, putStartBatch x${BATCH_ITEMS}`, etcd.batch),
    ],
  );
  console.log('');
  printTable(
    ['replication lag (open loop)', 'p50', 'p99', 'max', 'samples'],
    [
      [
        `entries (peak here ${round(lag.peakPerSec)}/s; target ${round(lag.targetPerSec)}/s, achieved ${round(lag.achievedPerSec)}/s)`,
        lag.entries.p50,
        lag.entries.p99,
        lag.entries.max,
        lag.entries.samples,
      ],
      [
        'ms, ack to standby applied (upper bound)',
        ms(lag.ms.p50),
        ms(lag.ms.p99),
        ms(lag.ms.max),
        lag.ms.writes,
      ],
      ['ack latency ms at this rate', ms(lag.ackP50Ms), ms(lag.ackP99Ms), null, null],
    ],
  );
  console.log(
    `(lag window: the standby did ${lag.standbyFullSyncs} full sync(s) and wrote ` +
      `${lag.standbyCheckpoints} checkpoint(s) in it)`,
  );
  if (lag.overloadedAt.length > 0 || lag.failures > 0) {
    console.log(
      `(lag phase: failed calls ${lag.failures}; rates not sustained before: ` +
        `${lag.overloadedAt.map((r) => `${round(r)}/s`).join(', ') || 'none'})`,
    );
  }
  console.log('');
  const d = lag.loopDelay;
  printTable(
    [
      `event-loop delay, last 10 s, at ${round(d.load.writes / d.load.seconds)} writes/s with a checkpoint (${round(d.checkpointMs)} ms) on the standby`,
      'p99 ms',
      'max ms',
      'longest GC pause ms',
    ],
    [
      ['primary', ms(d.primary.p99Ms), ms(d.primary.maxMs), ms(d.primary.gcMaxMs)],
      [
        'standby (writing the checkpoint)',
        ms(d.standby.p99Ms),
        ms(d.standby.maxMs),
        ms(d.standby.gcMaxMs),
      ],
    ],
  );
  console.log('');
  printTable(
    [
      `primary CPU per committed write (${settings.cpuWrites} writes, open loop)`,
      'us/write',
      'writes/s asked',
      'writes/s achieved',
      'failures',
      'runs discarded (primary changed)',
    ],
    [...[cpu1, cpu4], ...cpu1Fixed].map((c) => [
      `${c.standbys} standby(s), ${c.batch ? `putStartBatch x${BATCH_ITEMS}` : 'putStart'}`,
      ms(c.usPerWrite),
      c.ratePerSec,
      round(c.perSec),
      c.failures,
      c.discarded,
    ]),
  );
  console.log('');
  printTable(
    ['client sessions', 'value'],
    [
      [
        `putStart writes/s at c=${nats.single.concurrency} with sessions (runs)`,
        `${round(sessions.withPerSec)} (${sessions.withRuns.map(round).join(', ')})`,
      ],
      [
        'without sessions (runs)',
        `${round(sessions.withoutPerSec)} (${sessions.withoutRuns.map(round).join(', ')})`,
      ],
      ['with / without', ratio2(sessions.withPerSec / sessions.withoutPerSec)],
      [
        `heap per session, ${heap1.resultsPerSession} result kept (${heap1.sessions} sessions)`,
        `${round(heap1.bytesPerSession)} bytes`,
      ],
      [
        `heap per session, ${heap16.resultsPerSession} results kept (${heap16.sessions} sessions)`,
        `${round(heap16.bytesPerSession)} bytes`,
      ],
    ],
  );
  const phases: [string, number][] = [
    ['putStart coalesced', nats.single.perSec],
    ['putStart uncoalesced', coalescing.uncoalesced.perSec],
    ['putStartBatch', nats.batch.perSec],
    ['etcd OpLog putStart', etcd.single.perSec],
    ['etcd OpLog putStartBatch', etcd.batch.perSec],
    ['replication lag load', lag.achievedPerSec],
    ...[cpu1, cpu4, ...cpu1Fixed].map((c): [string, number] => [
      `CPU load ${c.standbys} standby(s) ${c.batch ? 'batch ' : ''}at ${c.ratePerSec}/s`,
      c.perSec,
    ]),
  ];
  const idle = phases.filter(([, perSec]) => !(perSec > 0));
  return {
    figures: {
      writesPerSec: round(nats.single.perSec),
      p50Ms: ms(nats.single.p50Ms),
      p99Ms: ms(nats.single.p99Ms),
      peakConcurrency: nats.single.concurrency,
      writesPerSecBatch: round(nats.batch.perSec),
      p50MsBatch: ms(nats.batch.p50Ms),
      p99MsBatch: ms(nats.batch.p99Ms),
      baselinePerSec: round(etcd.single.perSec),
      baselineP50Ms: ms(etcd.single.p50Ms),
      baselineP99Ms: ms(etcd.single.p99Ms),
      baselinePerSecBatch: round(etcd.batch.perSec),
      ratio: etcd.single.perSec > 0 ? ratio1(nats.single.perSec / etcd.single.perSec) : null,
      ratioBatch: etcd.batch.perSec > 0 ? ratio1(nats.batch.perSec / etcd.batch.perSec) : null,
      lagRatePerSec: round(lag.achievedPerSec),
      lagTargetPerSec: round(lag.targetPerSec),
      lagFailures: lag.failures,
      lagOverloadedAt: lag.overloadedAt.map(round),
      lagP50Entries: lag.entries.p50,
      lagP99Entries: lag.entries.p99,
      lagP50Ms: ms(lag.ms.p50),
      lagP99Ms: ms(lag.ms.p99),
      lagStandbyFullSyncs: lag.standbyFullSyncs,
      lagStandbyCheckpoints: lag.standbyCheckpoints,
      eventLoopDelayP99Ms: ms(lag.loopDelay.primary.p99Ms),
      eventLoopDelayMaxMs: ms(lag.loopDelay.primary.maxMs),
      standbyEventLoopDelayMaxMs: ms(lag.loopDelay.standby.maxMs),
      standbyEventLoopDelayP99Ms: ms(lag.loopDelay.standby.p99Ms),
      gcPauseMaxMs: ms(lag.loopDelay.primary.gcMaxMs),
      standbyGcPauseMaxMs: ms(lag.loopDelay.standby.gcMaxMs),
      eventLoopDelayRatePerSec: round(lag.loopDelay.load.writes / lag.loopDelay.load.seconds),
      eventLoopDelayCheckpointMs: round(lag.loopDelay.checkpointMs),
      primaryCpuUsPerWrite1: ms(cpu1.usPerWrite),
      primaryCpuUsPerWrite4: ms(cpu4.usPerWrite),
      primaryCpuRatePerSec: cpuRate,
      primaryCpuUsPerWriteAt2000: ms(cpuAt(2000).usPerWrite),
      primaryCpuAchievedPerSecAt2000: round(cpuAt(2000).perSec),
      primaryCpuUsPerWriteAt8000: ms(cpuAt(8000).usPerWrite),
      primaryCpuAchievedPerSecAt8000: round(cpuAt(8000).perSec),
      primaryCpuUsPerWriteBatch: ms(cpuBatch.usPerWrite),
      primaryCpuAchievedPerSecBatch: round(cpuBatch.perSec),
      writesPerSecUncoalesced: round(coalescing.uncoalesced.perSec),
      p50MsUncoalesced: ms(coalescing.uncoalesced.p50Ms),
      p99MsUncoalesced: ms(coalescing.uncoalesced.p99Ms),
      writesPerSecCoalescedSameCluster: round(coalescing.coalesced.perSec),
      uncoalescedConcurrency: UNCOALESCED_CONCURRENCY,
      sessionsPerSec: round(sessions.withPerSec),
      noSessionsPerSec: round(sessions.withoutPerSec),
      sessionsThroughputRatio: ratio2(sessions.withPerSec / sessions.withoutPerSec),
      sessionHeapBytes: round(heap1.bytesPerSession),
      sessionHeapBytes16: round(heap16.bytesPerSession),
    },
    verdicts: [
      verdict(
        'every phase committed writes',
        idle.length === 0,
        idle.length === 0
          ? `${phases.length} phases`
          : `none in: ${idle.map(([p]) => p).join(', ')}`,
      ),
    ],
  };
}
