// `npm run bench -- write --focus lag`: what makes a standby fall behind while the primary
// writes? One cluster per variant, the variants alternating run by run, each on fresh nodes and
// a fresh stream: all first get `--prefill` objects (putStartBatch x100, 8 outstanding) and
// wait for the standby to catch up; then an open loop of putStart at `--rate` for `--seconds`
// while the lag is sampled (lib/lagRun.ts). The variants (`--variants`, comma-separated):
// - `none`: no checkpoint and no verification round in the window (both intervals out of reach);
// - `checkpoint`: the same, and the standby writes a checkpoint (`understudy checkpoint
//   create --node <standby>`) started 1 s into the window;
// - `verify`: no checkpoint, and the standby runs a verification round every 2 s.
// `--runs` rounds of the variants (default 2); each run's figures (with the checkpoints written
// and full syncs done in the window, as the standby's /status counts them), then the medians
// and their ratios to `none`.
//
// `--standby-prof DIR` runs the nodes under `node --cpu-prof` and prints the top of the standby's
// profile over the window of each run (the standby stops gracefully to write it).
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import type { NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { runCli } from '../../test/harness/cli.ts';
import { numberFlag } from './args.ts';
import { BenchCluster, type BenchServers } from './cluster.ts';
import { formatProfile, monotonicUs, summariseProfile } from './cpuProfile.ts';
import { countersOf, lagRun, type LagRun } from './lagRun.ts';
import { loopDelayOf, type LoopDelay } from './loopDelay.ts';
import { cpuTimeUs } from './proc.ts';
import { median, ms, round } from './stats.ts';
import { printTable } from './table.ts';
import { BATCH_ITEMS, LEASE_TTL_MS, batchCall, log } from './writeLoads.ts';

const VARIANTS = ['none', 'checkpoint', 'verify'] as const;
type Variant = (typeof VARIANTS)[number];

/** Out of reach within a run: no checkpoint falls due, no verification round comes. */
const NEVER = ['--checkpoint-interval-entries', '1000000000', '--checkpoint-interval', '24h'];
const VARIANT_ARGS: Record<Variant, readonly string[]> = {
  none: [...NEVER, '--verify-interval', '24h'],
  checkpoint: [...NEVER, '--verify-interval', '24h'],
  verify: [...NEVER, '--verify-interval', '2s'],
};

/** `understudy checkpoint create` on `node`, started `afterMs` from now. */
async function checkpointLater(
  cluster: string,
  etcd: string,
  node: NodeHandle,
  afterMs: number,
): Promise<void> {
  await new Promise((r) => setTimeout(r, afterMs));
  const result = await runCli(
    ['checkpoint', 'create', '--cluster', cluster, '--etcd', etcd, '--node', node.id],
    120_000,
  );
  if (result.code !== 0) throw new Error(`checkpoint create failed: ${result.stderr}`);
}

interface LagFocusRun {
  readonly variant: Variant;
  readonly lag: LagRun;
  /** CPU of the standby over the window, in % of one core. */
  readonly standbyCpuPct: number;
  /** Checkpoints the standby wrote during the window, and how long the last one took. */
  readonly checkpointsWritten: number;
  readonly checkpointMs: number;
  /** Full syncs the standby did during the window. */
  readonly fullSyncs: number;
  readonly standbyLoopDelay: LoopDelay;
  readonly loadAverage: string;
}

function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** Writes `count` objects with putStartBatch x100, 8 outstanding. */
async function prefill(cluster: BenchCluster, count: number): Promise<void> {
  const call = batchCall(cluster.client, 'prefill');
  let next = 0;
  const calls = Math.ceil(count / BATCH_ITEMS);
  const worker = async (): Promise<void> => {
    while (next < calls) await call(next++);
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function oneRun(
  servers: BenchServers,
  variant: Variant,
  settings: { rate: number; seconds: number; prefill: number; profileDir: string | undefined },
): Promise<LagFocusRun> {
  const name = `bench${randomUUID().slice(0, 8)}`;
  await using cluster = await BenchCluster.start(servers, {
    cluster: name,
    nodeIds: ['n1', 'n2'],
    leaseTtlMs: LEASE_TTL_MS,
    extraArgs: ['--oplog', 'nats', ...VARIANT_ARGS[variant]],
    ...(settings.profileDir === undefined
      ? {}
      : { runtimeArgs: ['--cpu-prof', '--cpu-prof-dir', settings.profileDir] }),
  });
  const standby = cluster.standbys[0];
  if (standby === undefined) throw new Error('no standby');
  await prefill(cluster, settings.prefill);
  const primarySeq = (await cluster.primary.status()).appliedSeq;
  await standby.waitForStatus((s) => s.appliedSeq >= primarySeq, 120_000);
  const before = await countersOf(standby);
  const pid = standby.pid ?? 0;
  const cpuBefore = cpuTimeUs(pid);
  const wallBefore = performance.now();
  const fromUs = monotonicUs();
  const loadAtStart = loadAverage();
  const checkpoint =
    variant === 'checkpoint'
      ? checkpointLater(name, servers.etcd.endpoint, standby, 1000)
      : Promise.resolve();
  void checkpoint.catch(() => undefined);
  const lag = await lagRun(cluster, standby, settings.rate, settings.seconds, `lag-${variant}`);
  await checkpoint;
  const toUs = monotonicUs();
  const standbyCpuPct =
    ((cpuTimeUs(pid) - cpuBefore) / ((performance.now() - wallBefore) * 1000)) * 100;
  const after = await countersOf(standby);
  const standbyLoopDelay = await loopDelayOf(standby);
  if (settings.profileDir !== undefined) {
    await standby.terminate();
    const file = readdirSync(settings.profileDir).find(
      (n) => n.includes(`.${pid}.`) && n.endsWith('.cpuprofile'),
    );
    if (file === undefined) throw new Error(`no profile of pid ${pid} in ${settings.profileDir}`);
    const path = join(settings.profileDir, file);
    console.log(`\nstandby profile (${variant}, window only): ${path}`);
    console.log(formatProfile(summariseProfile(path, process.cwd(), { fromUs, toUs }), 15));
  }
  return {
    variant,
    lag,
    standbyCpuPct,
    checkpointsWritten: after.checkpoints - before.checkpoints,
    checkpointMs: after.checkpointMs,
    fullSyncs: after.fullSyncs - before.fullSyncs,
    standbyLoopDelay,
    loadAverage: `${loadAtStart} -> ${loadAverage()}`,
  };
}

/** The `lag` focus (see the module doc). */
export async function lagFocus(servers: BenchServers, args: readonly string[]): Promise<void> {
  const profileAt = args.indexOf('--standby-prof');
  const variantsAt = args.indexOf('--variants');
  const variants = (variantsAt >= 0 ? (args[variantsAt + 1] ?? '') : VARIANTS.join(','))
    .split(',')
    .map((v) => {
      if (!(VARIANTS as readonly string[]).includes(v))
        throw new Error(`--variants: ${v} is none of ${VARIANTS.join(', ')}`);
      return v as Variant;
    });
  const settings = {
    rate: numberFlag(args, '--rate', 6000),
    seconds: numberFlag(args, '--seconds', 10),
    prefill: numberFlag(args, '--prefill', 200_000),
    profileDir: profileAt >= 0 ? resolve(args[profileAt + 1] ?? '.') : undefined,
  };
  const runs = numberFlag(args, '--runs', 2);
  const results: (LagFocusRun & { run: number })[] = [];
  for (let r = 0; r < runs; r++) {
    for (const variant of variants) {
      log(
        `run ${r + 1}, ${variant}: prefill ${settings.prefill}, then ${settings.rate}/s for ${settings.seconds} s`,
      );
      const run = await oneRun(servers, variant, settings);
      log(
        `  lag p99 ${run.lag.entries.p99} entries / ${ms(run.lag.ms.p99)} ms, max ${run.lag.entries.max}; ` +
          `achieved ${round(run.lag.achievedPerSec)}/s; standby CPU ${round(run.standbyCpuPct)} %; ` +
          `checkpoints ${run.checkpointsWritten} (${round(run.checkpointMs)} ms), full syncs ${run.fullSyncs}; ` +
          `load ${run.loadAverage}`,
      );
      results.push({ ...run, run: r + 1 });
    }
  }
  console.log(
    `\nstandby lag by variant: ${runs} round(s) of ${variants.join(', ')}, alternating; ` +
      `prefill ${settings.prefill} objects, putStart at ${settings.rate}/s for ${settings.seconds} s, 1 standby`,
  );
  printTable(
    [
      'run',
      'variant',
      'lag p50',
      'lag p99',
      'lag max',
      'lag p99 ms',
      'achieved/s',
      'standby CPU %',
      'checkpoints',
      'checkpoint ms',
      'full syncs',
      'standby loop max ms',
      'standby GC max ms',
      'load',
    ],
    results.map((x) => [
      x.run,
      x.variant,
      x.lag.entries.p50,
      x.lag.entries.p99,
      x.lag.entries.max,
      ms(x.lag.ms.p99),
      round(x.lag.achievedPerSec),
      round(x.standbyCpuPct),
      x.checkpointsWritten,
      round(x.checkpointMs),
      x.fullSyncs,
      ms(x.standbyLoopDelay.maxMs),
      ms(x.standbyLoopDelay.gcMaxMs),
      x.loadAverage,
    ]),
  );
  const med = (variant: Variant, f: (x: LagFocusRun) => number): number =>
    median(results.filter((x) => x.variant === variant).map(f));
  for (const variant of variants.filter((v) => v !== 'none')) {
    if (!variants.includes('none')) break;
    const ratio = (f: (x: LagFocusRun) => number): string =>
      (med(variant, f) / Math.max(1, med('none', f))).toFixed(2);
    console.log(
      `medians ${variant} / none: lag p99 entries x${ratio((x) => x.lag.entries.p99)}, ` +
        `lag p99 ms x${ratio((x) => x.lag.ms.p99)}, standby CPU x${ratio((x) => x.standbyCpuPct)}`,
    );
  }
}
