// The write bench's loads (bench/write.bench.ts and its focused modes, writeFocus.ts): putStart
// calls and putStartBatch requests through the client library, a closed-loop measure of one
// load (writes/s, latency, the primary's and the client's CPU), a fresh cluster per phase, and
// the primary's CPU time per committed write at fixed open-loop rates.
import { randomUUID } from 'node:crypto';
import { type UnderstudyClient } from '../../src/client/client.ts';
import type { NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { BenchCluster, type BenchServers } from './cluster.ts';
import { closedLoop, openLoop, type BenchCall, type LoadResult } from './load.ts';
import { cpuTimeUs } from './proc.ts';
import { distribution, median, ms, round } from './stats.ts';

export type OpLogKind = 'nats' | 'etcd';

export const OBJECT_SIZE = 4096;
export const BATCH_ITEMS = 100;
export const LEASE_TTL_MS = 5000;

/** How many runs a figure is the median of, and the writes of a CPU-per-write run. */
export interface CpuSettings {
  readonly runs: number;
  readonly cpuWrites: number;
}

/** One measured load: its rate, latency and the CPU the primary and this process used. */
export interface Figures {
  readonly concurrency: number;
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of the primary process over the run, in % of one core. */
  readonly primaryCpuPct: number;
  /** CPU of the client (this process) over the run, in % of one core. */
  readonly clientCpuPct: number;
  readonly failures: number;
}

export const log = (line: string): void => void process.stderr.write(`${line}\n`);

export function singleCall(client: UnderstudyClient, prefix: string): BenchCall {
  return async (i) => {
    const placement = await client.putStart(`${prefix}/${i}`, OBJECT_SIZE, 1);
    return { writes: 1, seq: placement.seq };
  };
}

export function batchCall(client: UnderstudyClient, prefix: string): BenchCall {
  return async (i) => {
    const items = Array.from({ length: BATCH_ITEMS }, (_, j) => ({
      key: `${prefix}/${i}/${j}`,
      size: OBJECT_SIZE,
      replicaNum: 1,
    }));
    const results = await client.putStartBatch(items);
    let writes = 0;
    let seq = 0;
    for (const r of results) {
      if (!r.ok) continue;
      writes++;
      seq = Math.max(seq, r.result.seq);
    }
    return { writes, seq };
  };
}

export async function measure(
  primary: NodeHandle,
  call: BenchCall,
  concurrency: number,
  seconds: number,
): Promise<Figures> {
  const pid = primary.pid ?? 0;
  const cpuBefore = cpuTimeUs(pid);
  const clientBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const result: LoadResult = await closedLoop(call, concurrency, seconds);
  const wallUs = (performance.now() - wallBefore) * 1000;
  const clientCpu = process.cpuUsage(clientBefore);
  const latencies = distribution(result.calls.map((c) => c.ackedAt - c.sentAt));
  return {
    concurrency,
    perSec: result.writes / result.seconds,
    p50Ms: latencies.p50,
    p99Ms: latencies.p99,
    primaryCpuPct: ((cpuTimeUs(pid) - cpuBefore) / wallUs) * 100,
    clientCpuPct: ((clientCpu.user + clientCpu.system) / wallUs) * 100,
    failures: result.failures,
  };
}

export function medianFigures(runs: readonly Figures[]): Figures {
  const m = (f: (r: Figures) => number): number => median(runs.map(f));
  return {
    concurrency: runs[0]?.concurrency ?? 0,
    perSec: m((r) => r.perSec),
    p50Ms: m((r) => r.p50Ms),
    p99Ms: m((r) => r.p99Ms),
    primaryCpuPct: m((r) => r.primaryCpuPct),
    clientCpuPct: m((r) => r.clientCpuPct),
    failures: runs.reduce((s, r) => s + r.failures, 0),
  };
}

export async function withCluster<T>(
  servers: BenchServers,
  standbys: number,
  oplog: OpLogKind,
  body: (cluster: BenchCluster, name: string) => Promise<T>,
): Promise<T> {
  const name = `bench${randomUUID().slice(0, 8)}`;
  const ids = Array.from({ length: standbys + 1 }, (_, i) => `n${i + 1}`);
  await using cluster = await BenchCluster.start(servers, {
    cluster: name,
    nodeIds: ids,
    leaseTtlMs: LEASE_TTL_MS,
    extraArgs: ['--oplog', oplog],
  });
  return await body(cluster, name);
}
/** A fixed open-loop workload of the CPU-per-write figures. */
export interface CpuLoad {
  /** Committed writes per second asked for (putStartBatch: items per second). */
  readonly ratePerSec: number;
  readonly batch: boolean;
}

export interface CpuPerWrite extends CpuLoad {
  readonly standbys: number;
  readonly usPerWrite: number;
  /** Writes per second achieved (below the rate asked for: the machine could not keep up). */
  readonly perSec: number;
  readonly failures: number;
  /** Runs thrown away because the primary changed during them (lease lost on a busy host). */
  readonly discarded: number;
}

/**
 * The primary's CPU time per committed write over `settings.cpuWrites` writes issued at each
 * load's rate (open loop: the same rate, hence the same group commits, with any number of
 * standbys), on one cluster. A run during which the primary changed is discarded and repeated
 * (twice at most).
 */
export async function primaryCpu(
  servers: BenchServers,
  standbys: number,
  loads: readonly CpuLoad[],
  settings: CpuSettings,
): Promise<CpuPerWrite[]> {
  return withCluster(servers, standbys, 'nats', async (cluster) => {
    await closedLoop(singleCall(cluster.client, 'cpu-warmup'), 64, 1, 0);
    const results: CpuPerWrite[] = [];
    for (const [l, load] of loads.entries()) {
      const what = load.batch ? `putStartBatch x${BATCH_ITEMS}` : 'putStart';
      log(
        `primary CPU per write with ${standbys} standby(s): ${what} at ${round(load.ratePerSec)} writes/s`,
      );
      const perWrite: number[] = [];
      const rates: number[] = [];
      let failures = 0;
      let discarded = 0;
      for (let r = 0; perWrite.length < settings.runs && r < settings.runs + 2; r++) {
        const primary = await cluster.fleet.primary(60_000);
        const pid = primary.pid ?? 0;
        const epoch = (await primary.status()).epoch;
        const before = cpuTimeUs(pid);
        const prefix = `cpu-${l}-run${r}`;
        const result = load.batch
          ? await openLoop(
              batchCall(cluster.client, prefix),
              load.ratePerSec / BATCH_ITEMS,
              settings.cpuWrites / load.ratePerSec,
            )
          : await openLoop(
              singleCall(cluster.client, prefix),
              load.ratePerSec,
              settings.cpuWrites / load.ratePerSec,
            );
        const used = cpuTimeUs(pid) - before;
        const after = await primary.status().catch(() => undefined);
        if (after?.role !== 'primary' || after.epoch !== epoch) {
          discarded++;
          log(`  run ${r + 1}: the primary changed during the run; discarded`);
          continue;
        }
        perWrite.push(used / Math.max(1, result.writes));
        rates.push(result.writes / result.seconds);
        failures += result.failures + result.skipped;
        if (result.firstFailure !== undefined) log(`  first failure: ${result.firstFailure}`);
        log(`  run ${r + 1}: ${ms(used / Math.max(1, result.writes))} us/write`);
      }
      results.push({
        ...load,
        standbys,
        usPerWrite: perWrite.length === 0 ? NaN : median(perWrite),
        perSec: rates.length === 0 ? NaN : median(rates),
        failures,
        discarded,
      });
    }
    return results;
  });
}
