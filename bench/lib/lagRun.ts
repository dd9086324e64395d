// Replication lag under an open-loop load: how far a standby is behind the primary, in entries
// (both nodes' /status sampled together every 50 ms) and in ms (from a write's ack at the
// client to the first /status of the standby, polled every 10 ms, that shows its seq applied:
// an upper bound, within ~10 ms). The write bench's lag phase and its `--focus lag` use it.
import type { NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import type { BenchCluster } from './cluster.ts';
import { openLoop } from './load.ts';
import { distribution } from './stats.ts';
import { singleCall } from './writeLoads.ts';

/** What one lag run measured. */
export interface LagRun {
  readonly targetPerSec: number;
  readonly achievedPerSec: number;
  readonly entries: { p50: number; p99: number; max: number; samples: number };
  readonly ms: { p50: number; p99: number; max: number; writes: number };
  readonly ackP50Ms: number;
  readonly ackP99Ms: number;
  readonly failures: number;
  /** Calls the open loop did not issue (too many outstanding: over capacity). */
  readonly skipped: number;
  /**
   * What the standby did during the window besides following, as its /status counts it: full
   * syncs (its fold stops for the whole transfer) and checkpoints it wrote.
   */
  readonly standbyFullSyncs: number;
  readonly standbyCheckpoints: number;
}

/** A node's counters that explain a lag window, as its /status shows them. */
export interface WindowCounters {
  readonly fullSyncs: number;
  readonly checkpoints: number;
  /** How long the last checkpoint it wrote took (ms). */
  readonly checkpointMs: number;
}

export async function countersOf(node: NodeHandle): Promise<WindowCounters> {
  const status = (await node.status()) as {
    checkpoints?: { written: number; lastWriteMs: number };
    verification?: { fullSyncs: number };
  };
  return {
    fullSyncs: status.verification?.fullSyncs ?? 0,
    checkpoints: status.checkpoints?.written ?? 0,
    checkpointMs: status.checkpoints?.lastWriteMs ?? 0,
  };
}

/** One open-loop run of putStart at `ratePerSec` for `seconds` while sampling the standby's progress. */
export async function lagRun(
  cluster: BenchCluster,
  standby: NodeHandle,
  ratePerSec: number,
  seconds: number,
  prefix: string,
): Promise<LagRun> {
  const before = await countersOf(standby);
  const entrySamples: number[] = [];
  const standbySamples: { at: number; appliedSeq: number }[] = [];
  let sampling = true;
  const every = async (periodMs: number, sample: () => Promise<void>): Promise<void> => {
    while (sampling) {
      const next = performance.now() + periodMs;
      await sample().catch(() => undefined); // a missed sample
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  };
  const samplers = [
    every(50, async () => {
      const [p, s] = await Promise.all([cluster.primary.status(), standby.status()]);
      entrySamples.push(Math.max(0, p.appliedSeq - s.appliedSeq));
    }),
    every(10, async () => {
      const s = await standby.status();
      standbySamples.push({ at: performance.now(), appliedSeq: s.appliedSeq });
    }),
  ];
  const result = await openLoop(singleCall(cluster.client, prefix), ratePerSec, seconds);
  // Let the standby catch up with the last writes, then stop sampling.
  const lastSeq = result.calls.reduce((m, c) => Math.max(m, c.seq), 0);
  await standby.waitForStatus((s) => s.appliedSeq >= lastSeq, 60_000);
  await new Promise((r) => setTimeout(r, 50));
  sampling = false;
  await Promise.all(samplers);
  const after = await countersOf(standby);

  const lagMs = ackToApplied(result.calls, standbySamples);
  const entries = distribution(entrySamples);
  const lagMsDist = distribution(lagMs);
  const acks = distribution(result.calls.map((c) => c.ackedAt - c.sentAt));
  return {
    targetPerSec: ratePerSec,
    achievedPerSec: result.writes / result.seconds,
    entries: { p50: entries.p50, p99: entries.p99, max: entries.max, samples: entries.count },
    ms: { p50: lagMsDist.p50, p99: lagMsDist.p99, max: lagMsDist.max, writes: lagMsDist.count },
    ackP50Ms: acks.p50,
    ackP99Ms: acks.p99,
    failures: result.failures,
    skipped: result.skipped,
    standbyFullSyncs: after.fullSyncs - before.fullSyncs,
    standbyCheckpoints: after.checkpoints - before.checkpoints,
  };
}

/**
 * For each acknowledged write the standby's samples saw applied: from its ack to the first
 * sample (in time) showing its seq applied, 0 when that sample came before the ack. An upper
 * bound, within the time between samples. Writes no sample saw applied are left out.
 */
export function ackToApplied(
  acks: readonly { seq: number; ackedAt: number }[],
  samples: readonly { at: number; appliedSeq: number }[],
): number[] {
  const out: number[] = [];
  let i = 0;
  for (const ack of [...acks].sort((a, b) => a.seq - b.seq)) {
    while (i < samples.length && samples[i]!.appliedSeq < ack.seq) i++;
    const sample = samples[i];
    if (sample === undefined) break;
    out.push(Math.max(0, sample.at - ack.ackedAt));
  }
  return out;
}
