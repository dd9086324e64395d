// The event-loop delay of node processes while the primary writes and a standby writes a
// checkpoint: the write bench's stall figures. Each node measures its own loop
// (perf_hooks.monitorEventLoopDelay) and shows the p99 and max over its last 10 s on /metrics
// (src/observe/eventLoopDelay.ts); this reads them right after the load.
import { runCli } from '../../test/harness/cli.ts';
import type { NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { openLoop, type BenchCall, type LoadResult } from './load.ts';

/** A node's event-loop delay over its last 10 s, and its longest GC pause, in ms. */
export interface LoopDelay {
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly gcMaxMs: number;
}

/** The event-loop delay `node`'s /metrics shows now. */
export async function loopDelayOf(node: NodeHandle): Promise<LoopDelay> {
  const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const seconds = (name: string): number => {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (match === null) throw new Error(`${node.id}: no ${name} on /metrics`);
    return Number(match[1]);
  };
  return {
    p99Ms: seconds('understudy_event_loop_delay_p99_seconds') * 1000,
    maxMs: seconds('understudy_event_loop_delay_max_seconds') * 1000,
    gcMaxMs: seconds('understudy_gc_pause_max_seconds') * 1000,
  };
}

export interface LoopDelayRun {
  readonly primary: LoopDelay;
  readonly standby: LoopDelay;
  readonly load: LoadResult;
  /** Wall time of `understudy checkpoint create` on the standby. */
  readonly checkpointMs: number;
}

/**
 * An open-loop load of `call` at `ratePerSec` for `seconds` while `standby` writes a checkpoint
 * (`understudy checkpoint create`, started 0.5 s into the load); then both nodes' event-loop
 * delay (their last 10 s: the load's, when it lasts that long).
 */
export async function loopDelayDuringCheckpoint(
  options: { readonly cluster: string; readonly etcd: string },
  primary: NodeHandle,
  standby: NodeHandle,
  call: BenchCall,
  ratePerSec: number,
  seconds: number,
): Promise<LoopDelayRun> {
  const loading = openLoop(call, ratePerSec, seconds);
  await new Promise((r) => setTimeout(r, 500));
  const started = performance.now();
  const checkpoint = runCli(
    [
      'checkpoint',
      'create',
      '--cluster',
      options.cluster,
      '--etcd',
      options.etcd,
      '--node',
      standby.id,
    ],
    120_000,
  ).then((result) => {
    if (result.code !== 0) throw new Error(`checkpoint create failed: ${result.stderr}`);
    return performance.now() - started;
  });
  void checkpoint.catch(() => undefined);
  const [load, checkpointMs] = await Promise.all([loading, checkpoint]);
  return {
    primary: await loopDelayOf(primary),
    standby: await loopDelayOf(standby),
    load,
    checkpointMs,
  };
}
