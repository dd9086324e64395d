// `npm run bench -- coldstart [--quick] [--10m] [--objects N] [--runs N]`: durable restarts at scale,
// with master nodes as processes (`understudy node`) on a real etcd and nats-server.
//
// The stream is seeded directly through the NATS OpLog (not the write path), as an elected
// primary writes it: a seed node wins the leader key in etcd (a real election), writes its EPOCH
// fence with that epoch, then 8 segment mounts and N synthetic objects (PUT_START + PUT_END
// each, 2 replicas; bench/lib/syntheticWrites.ts) stamped with it, and resigns; so the history
// holds 2N + 9 entries, 100 per message as a primary's group commit stores them, and the nodes
// fold it (entries no elected primary wrote would be passed over as foreign).
// A primary (n1) starts on it, then a standby (n2). Measured, in this order:
// 1. re-fold: n2 started (and killed -9 and started again) with no checkpoint: the time from
//    spawning the process to eligible (/readyz 200 as a standby, applied within
//    --max-lag-for-promotion of the stream's last entry), folding the whole history;
// 2. checkpoint writes: `understudy checkpoint create --node n2 --json`, no other load, 100
//    writes between two (so each is at a new seq): its size, and the writer's own time (its
//    `checkpointWritten` log line: freezing the state to publishing, read-back checked). The
//    first one trims the stream below it;
// 3. a 10k-entry tail written through the client (putStartBatch of 100), then n2 killed -9 and
//    started again, loading the newest checkpoint and folding the tail: spawn to eligible, and
//    spawn to its `checkpointLoaded` log line. After a kill -9 the new process finds the dead
//    one gone (same host, pid free) and revokes its registration lease (TTL 5 s here) instead of
//    waiting for it; the same cold start is also measured after a clean stop (SIGTERM), where
//    the stopped node gave its id back;
// 4. the primary's write throughput (putStart, 64 outstanding) while n2 writes a checkpoint,
//    against the same load's rate outside that window (the window is the writer's own, from its
//    log line), as a ratio.
// Nodes never write checkpoints on their own (intervals set out of reach). Every figure is the
// median of --runs runs (default 3), each with the 1-minute load average when it ended.
// Verdicts: the nodes folded the seeded history (a seeded object reads back through the client),
// and the standby cold-started from a checkpoint has the primary's state digest at one seq.
// `--10m` adds the 10M size, on a second cluster of the same servers: its primary and a standby
// fold the seeded history side by side, the standby writes one checkpoint, a tail is written, and
// the standby cold-starts from the checkpoint --runs times (no re-fold and no write ratio there).
// `--quick` (CI): 5,000 objects, 1 run, a 1,000-entry tail, 2 s of load around the checkpoint;
// the 10M stage at 20,000 objects.
import { loadavg } from 'node:os';
import { connect } from '@nats-io/transport-node';
import { createEtcdElector } from '../src/adapters/etcd/etcdElector.ts';
import { createNatsOpLog } from '../src/adapters/nats/natsOpLog.ts';
import { systemClock } from '../src/adapters/systemClock.ts';
import { type UnderstudyClient } from '../src/client/client.ts';
import { createClient } from '../src/client/nats.ts';
import { toEntry } from '../src/domain/log/eventCodec.ts';
import type { MetadataEvent } from '../src/domain/model/types.ts';
import { NodeHandle, type FleetOptions } from '../src/tools/localCluster/nodeFleet.ts';
import type { CheckpointInfo } from '../src/ports/checkpointStore.ts';
import { runCli } from '../test/harness/cli.ts';
import { numberFlag } from './lib/args.ts';
import { verdict, type BenchOutcome } from './lib/report.ts';
import { BenchServers } from './lib/cluster.ts';
import { closedLoop } from './lib/load.ts';
import { median, round } from './lib/stats.ts';
import { SyntheticWrites } from './lib/syntheticWrites.ts';
import { printTable, type Cell } from './lib/table.ts';

const CLUSTER = 'coldstartbench';
const MAX_LAG = 1000;
/** The node that seeds the history (an elected primary that never runs). */
const SEED_NODE = 'seed';
const BATCH_ITEMS = 100;
const SEED_OBJECTS_PER_APPEND = 5000;
const WRITE_CONCURRENCY = 64;
const POLL_MS = 50;
const LONG_MS = 30 * 60_000;

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const load1 = (): number => Math.round((loadavg()[0] ?? 0) * 10) / 10;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ratio2 = (n: number): number => Math.round(n * 100) / 100;

/** `1M`, `100k`, or the number itself: the size in the JSON keys. */
function sizeLabel(n: number): string {
  if (n % 1_000_000 === 0) return `${n / 1_000_000}M`;
  if (n % 1000 === 0) return `${n / 1000}k`;
  return String(n);
}

/**
 * Seeds the cluster's empty stream as an elected primary would write it: SEED_NODE wins the
 * leader key in etcd, appends its EPOCH fence, the mounts and `objects` synthetic objects
 * stamped with its epoch, and resigns. The last seq.
 */
async function seedHistory(
  natsUrl: string,
  etcd: string,
  objects: number,
  cluster = CLUSTER,
): Promise<number> {
  const elector = createEtcdElector({
    client: { endpoints: [etcd] },
    cluster,
    nodeId: SEED_NODE,
    ttlMs: 30_000,
    clock: systemClock,
  });
  const nc = await connect({ servers: natsUrl, name: 'coldstart-bench-seed' });
  try {
    await elector.start();
    const won = await elector.campaign({ nodeId: SEED_NODE, address: 'http://127.0.0.1:9' });
    if (!won.won) throw new Error(`the seed node lost the election to ${won.leader?.nodeId}`);
    const { epoch } = won;
    const opLog = await createNatsOpLog({ nc, cluster });
    const writer = opLog.openWriter({ expectedLastStreamSeq: 0 });
    const writes = new SyntheticWrites();
    let seq = 0;
    const append = (events: readonly MetadataEvent[]) =>
      writer.append(events.map((event) => toEntry({ seq: ++seq, epoch, ts: Date.now(), event })));
    await append([{ op: 'EPOCH', epoch, nodeId: SEED_NODE }, ...writes.mounts()]);
    for (let done = 0; done < objects; done += SEED_OBJECTS_PER_APPEND) {
      await append(writes.objects(Math.min(SEED_OBJECTS_PER_APPEND, objects - done)));
    }
    await writer.close();
    await opLog.close();
    await elector.resign();
    return seq;
  } finally {
    await elector.close().catch(() => undefined);
    await nc.close();
  }
}

interface ColdStart {
  readonly eligibleMs: number;
  /** Spawn to the `checkpointLoaded` log line, when a checkpoint was loaded. */
  readonly loadedMs: number | undefined;
  readonly load: number;
}

/** How a cold start's node is stopped first. */
type Stop = 'kill -9' | 'SIGTERM';

/**
 * Spawns `node` (stopped first if running: kill -9, or SIGTERM with `stop: 'SIGTERM'`) and
 * waits until it is eligible: /readyz 200 as a standby with its applied seq within MAX_LAG of
 * `targetSeq`.
 */
async function coldStart(
  node: NodeHandle,
  targetSeq: number,
  stop: Stop = 'kill -9',
): Promise<ColdStart> {
  if (stop === 'SIGTERM') await node.terminate();
  else await node.kill();
  const from = node.logs.length;
  const started = Date.now();
  await node.restart();
  for (;;) {
    if (Date.now() - started > LONG_MS) throw new Error(`${node.id}: not eligible in time`);
    if (!node.running) throw new Error(`${node.id} exited during its cold start`);
    try {
      const ready = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
      if (ready.status === 200) {
        const status = await node.status();
        if (status.role === 'standby' && status.appliedSeq >= targetSeq - MAX_LAG) break;
      }
    } catch {
      // not listening yet
    }
    await sleep(POLL_MS);
  }
  const eligibleMs = Date.now() - started;
  const loaded = node.logs.slice(from).find((l) => l.event === 'checkpointLoaded');
  return {
    eligibleMs,
    loadedMs: loaded === undefined ? undefined : loaded.time - started,
    load: load1(),
  };
}

/** The table rows of checkpoint cold starts: to eligible (with the loads), then to loaded. */
function checkpointColdStartRows(label: string, starts: readonly ColdStart[]): Cell[][] {
  return [
    [
      label,
      round(median(starts.map((c) => c.eligibleMs))),
      starts.map((c) => c.eligibleMs).join(' / '),
      starts.map((c) => c.load).join(' / '),
    ],
    [
      '  of which to checkpointLoaded (ms)',
      round(median(starts.map((c) => c.loadedMs ?? 0))),
      starts.map((c) => c.loadedMs).join(' / '),
      '',
    ],
  ];
}

interface CheckpointWrite {
  readonly info: CheckpointInfo;
  /** The writer's own time for it (freeze to publish). */
  readonly writeMs: number;
  /** Wall time (ms) when the writer logged it written. */
  readonly writtenAt: number;
  readonly load: number;
}

/**
 * Checkpoint writes given up because the read-back of the staged checkpoint stalled (an object
 * store read on nats-server 2.9 that never ends, seen at 1M objects): each is retried once and
 * counted, so a run shows how often it happened.
 */
let readBackStalls = 0;

/** `understudy checkpoint create --node <node> --json`, and the writer's log line for it. */
async function createCheckpoint(
  etcd: string,
  node: NodeHandle,
  cluster = CLUSTER,
  retried = false,
): Promise<CheckpointWrite> {
  const from = node.logs.length;
  const args = ['checkpoint', 'create', '--cluster', cluster, '--etcd', etcd, '--node', node.id];
  const result = await runCli([...args, '--json'], LONG_MS);
  if (result.code !== 0 && !retried && result.stderr.includes('delivered nothing for')) {
    readBackStalls++;
    log(`checkpoint write on ${node.id} given up (read-back stalled); once more`);
    return createCheckpoint(etcd, node, cluster, true);
  }
  if (result.code !== 0) {
    const last = node.logs
      .slice(from)
      .slice(-3)
      .map((l) => JSON.stringify(l));
    throw new Error(
      `checkpoint create failed: ${result.stderr}${node.id} ${node.running ? 'running' : 'exited'}; its last log lines:\n${last.join('\n')}`,
    );
  }
  const info = JSON.parse(result.stdout) as CheckpointInfo;
  const line = await node.waitForLog(
    (l) => l.event === 'checkpointWritten' && l['checkpoint'] === info.name,
    10_000,
    from,
  );
  return { info, writeMs: round(Number(line['tookMs'])), writtenAt: line.time, load: load1() };
}

/** `count` putStart of 1 replica in batches of 100; resolves when all committed. */
async function writeBatches(client: UnderstudyClient, prefix: string, count: number) {
  for (let done = 0; done < count; done += BATCH_ITEMS) {
    const items = Array.from({ length: Math.min(BATCH_ITEMS, count - done) }, (_, j) => ({
      key: `${prefix}/${done + j}`,
      size: 4096,
      replicaNum: 1,
    }));
    const results = await client.putStartBatch(items);
    const failed = results.find((r) => !r.ok);
    if (failed !== undefined) throw new Error(`putStartBatch: ${JSON.stringify(failed)}`);
  }
}

interface RatioRun {
  readonly withPerSec: number;
  readonly withoutPerSec: number;
  readonly ratio: number;
  readonly checkpoint: CheckpointWrite;
}

/**
 * putStart with WRITE_CONCURRENCY outstanding for `outsideSeconds`, then through a checkpoint
 * written by `writer`, then `outsideSeconds` more (the load's length is set from `expectedMs`;
 * the window is clipped to it). Rates by acknowledgement time.
 */
async function writeRatio(
  client: UnderstudyClient,
  etcd: string,
  writer: NodeHandle,
  expectedMs: number,
  run: number,
  outsideSeconds: number,
): Promise<RatioRun> {
  const seconds = 2 * outsideSeconds + Math.ceil((3 * expectedMs) / 1000);
  const loadStart = performance.now() + 1000; // closedLoop's warm-up
  const loadRun = closedLoop(
    async (i) => {
      const placement = await client.putStart(`ratio/${run}/${i}`, 4096, 1);
      return { writes: 1, seq: placement.seq };
    },
    WRITE_CONCURRENCY,
    seconds,
  );
  await sleep(1000 + outsideSeconds * 1000);
  const checkpoint = await createCheckpoint(etcd, writer);
  const result = await loadRun;
  const loadEnd = loadStart + seconds * 1000;
  const cpEnd = Math.min(loadEnd, checkpoint.writtenAt - performance.timeOrigin);
  const cpStart = Math.max(loadStart, cpEnd - checkpoint.writeMs);
  if (cpEnd === loadEnd) log(`  run ${run}: the checkpoint outlasted the load; window clipped`);
  let inside = 0;
  let outside = 0;
  for (const call of result.calls) {
    if (call.ackedAt >= cpStart && call.ackedAt <= cpEnd) inside += call.writes;
    else outside += call.writes;
  }
  if (result.failures > 0)
    log(`  run ${run}: ${result.failures} failed calls: ${result.firstFailure}`);
  const withPerSec = inside / ((cpEnd - cpStart) / 1000);
  const withoutPerSec = outside / ((loadEnd - loadStart - (cpEnd - cpStart)) / 1000);
  return { withPerSec, withoutPerSec, ratio: withPerSec / withoutPerSec, checkpoint };
}

/** Waits for `standby` to apply the primary's last seq; their state digests there. */
async function digestsAt(primary: NodeHandle, standby: NodeHandle) {
  const seq = (await primary.status()).appliedSeq;
  const read = async (node: NodeHandle) => {
    const s = await node.waitForStatus((x) => x.appliedSeq >= seq, LONG_MS, true);
    const { digest, digestSeq } = s as typeof s & { digest?: string; digestSeq?: number };
    return `${String(digest)}@${String(digestSeq)}`;
  };
  return { primary: await read(primary), standby: await read(standby) };
}

/** The cluster of the 10M size, on the same servers. */
const HUGE_CLUSTER = 'coldstartbench10m';

interface HugeRun {
  readonly objects: number;
  readonly historyEntries: number;
  readonly primaryStartMs: number;
  readonly checkpoint: CheckpointWrite;
  readonly tailEntries: number;
  readonly coldStarts: readonly ColdStart[];
  readonly digests: { readonly primary: string; readonly standby: string };
}

/**
 * The 10M size (`--10m`; `--quick` runs it small so CI checks it): a second cluster on the same
 * servers seeded with `objects`; two nodes fold the history side by side, one wins the election,
 * the standby writes one checkpoint, a tail of `tailEntries` is written through the client, and it
 * cold-starts from the checkpoint `runs` times. No re-fold runs and no write ratio: at 10M each
 * would add many minutes and measure what the 1M size does.
 */
async function hugeColdStart(
  servers: BenchServers,
  base: FleetOptions,
  objects: number,
  runs: number,
  tailEntries: number,
): Promise<HugeRun> {
  const etcd = servers.etcd.endpoint;
  const options: FleetOptions = {
    ...base,
    cluster: HUGE_CLUSTER,
    // ~450 B of heap per object, and a checkpoint's chunks beside the state while it is written.
    runtimeArgs: ['--max-old-space-size=12288'],
  };
  let started = performance.now();
  const historyEntries = await seedHistory(servers.nats.url, etcd, objects, HUGE_CLUSTER);
  log(
    `${objects} objects: seeded ${historyEntries} entries in ${round(performance.now() - started)} ms`,
  );
  const nodes: NodeHandle[] = [];
  let client: UnderstudyClient | undefined;
  try {
    started = performance.now();
    nodes.push(await NodeHandle.start('h1', options), await NodeHandle.start('h2', options));
    // Either may win the election.
    let primary: NodeHandle | undefined;
    while (primary === undefined) {
      if (performance.now() - started > LONG_MS) throw new Error('no primary in time');
      for (const node of nodes) {
        const status = await node.status().catch(() => undefined);
        if (status?.role === 'primary') primary = node;
      }
      await sleep(POLL_MS);
    }
    const standby = nodes.find((n) => n !== primary) as NodeHandle;
    const primaryStartMs = performance.now() - started;
    const targetSeq = (await primary.status()).appliedSeq;
    await standby.waitForStatus(
      (s) => s.role === 'standby' && s.appliedSeq >= targetSeq - MAX_LAG,
      LONG_MS,
    );
    log(
      `${objects} objects: ${primary.id} primary after ${round(primaryStartMs)} ms, ${standby.id} eligible after ${round(performance.now() - started)} ms, folding side by side (load ${load1()})`,
    );
    const checkpoint = await createCheckpoint(etcd, standby, HUGE_CLUSTER);
    log(
      `${objects} objects: checkpoint ${checkpoint.info.name}, ${checkpoint.info.objectCount} objects, ${checkpoint.info.bytes} bytes, written in ${checkpoint.writeMs} ms (load ${checkpoint.load})`,
    );
    client = await createClient({
      servers: servers.nats.url,
      cluster: HUGE_CLUSTER,
      requestTimeoutMs: 5000,
      deadlineMs: 60_000,
      backoff: { initialMs: 10, maxMs: 100 },
    });
    await writeBatches(client, 'tail', tailEntries);
    const tailSeq = (await primary.status()).appliedSeq;
    const coldStarts: ColdStart[] = [];
    for (let r = 0; r < runs; r++) {
      const c = await coldStart(standby, tailSeq);
      coldStarts.push(c);
      log(
        `${objects} objects: checkpoint cold start run ${r + 1}: loaded after ${c.loadedMs} ms, eligible after ${c.eligibleMs} ms (load ${c.load})`,
      );
    }
    return {
      objects,
      historyEntries,
      primaryStartMs,
      checkpoint,
      tailEntries: tailSeq - checkpoint.info.appliedSeq,
      coldStarts,
      digests: await digestsAt(primary, standby),
    };
  } finally {
    await client?.close().catch(() => undefined);
    await Promise.all(nodes.map((n) => n.kill()));
  }
}

export async function run(args: string[]): Promise<BenchOutcome> {
  const quick = args.includes('--quick');
  const objects = numberFlag(args, '--objects', quick ? 5000 : 1_000_000);
  const runs = numberFlag(args, '--runs', quick ? 1 : 3);
  const tailEntries = quick ? 1000 : 10_000;
  /** Seconds of load before and after the checkpoint window. */
  const outsideSeconds = quick ? 2 : 10;
  const size = sizeLabel(objects);
  // The 10M size runs with --10m (~25 minutes, ~12 GB of heap over two node processes);
  // --quick runs the same stage at a small size, so CI checks it.
  const hugeObjects = args.includes('--10m') ? 10_000_000 : quick ? 20_000 : undefined;
  log(
    `coldstart benchmark: ${objects} objects, ${runs} runs each (median); node ${process.version}; load ${load1()}`,
  );
  await using servers = await BenchServers.start();
  const etcd = servers.etcd.endpoint;
  const options: FleetOptions = {
    cluster: CLUSTER,
    nats: [servers.nats.url],
    etcd: [etcd],
    leaseTtlMs: 5000,
    extraArgs: [
      '--log-level',
      'info',
      '--max-lag-for-promotion',
      String(MAX_LAG),
      '--checkpoint-interval-entries',
      '1000000000',
      '--checkpoint-interval',
      '1000m',
    ],
  };

  let started = performance.now();
  const historySeq = await seedHistory(servers.nats.url, etcd, objects);
  log(`seeded ${historySeq} entries in ${round(performance.now() - started)} ms`);

  const nodes: NodeHandle[] = [];
  let client: UnderstudyClient | undefined;
  try {
    started = performance.now();
    const primary = await NodeHandle.start('n1', options);
    nodes.push(primary);
    await primary.waitForStatus((s) => s.role === 'primary', LONG_MS);
    const primaryStartMs = performance.now() - started;
    log(`n1 primary after folding the history: ${round(primaryStartMs)} ms (load ${load1()})`);
    const targetSeq = (await primary.status()).appliedSeq; // the history and n1's EPOCH fence
    const reader = await createClient({
      servers: servers.nats.url,
      cluster: CLUSTER,
      requestTimeoutMs: 5000,
      deadlineMs: 60_000,
      backoff: { initialMs: 10, maxMs: 100 },
    });
    client = reader;
    // The first seeded object and the last, read back through the client.
    const seeded = await Promise.all(
      ['bench/object/0', `bench/object/${(objects - 1).toString(36)}`].map((key) =>
        reader.get(key).then(
          (record) => record.replicas.every((r) => r.status === 'complete'),
          () => false,
        ),
      ),
    );

    const standby = await NodeHandle.start('n2', options);
    nodes.push(standby);
    const refold: ColdStart[] = [];
    for (let r = 0; r < runs; r++) {
      refold.push(await coldStart(standby, targetSeq));
      log(
        `re-fold run ${r + 1}: eligible after ${refold[r]?.eligibleMs} ms (load ${refold[r]?.load})`,
      );
    }

    const quiet: CheckpointWrite[] = [];
    for (let r = 0; r < runs; r++) {
      if (r > 0) await writeBatches(client, `between/${r}`, BATCH_ITEMS);
      quiet.push(await createCheckpoint(etcd, standby));
      const q = quiet[r];
      log(
        `checkpoint ${r + 1}: ${q?.info.name}, ${q?.info.objectCount} objects, ${q?.info.bytes} bytes, written in ${q?.writeMs} ms (load ${q?.load})`,
      );
    }
    const newest = quiet[quiet.length - 1]?.info as CheckpointInfo;

    await writeBatches(client, 'tail', tailEntries);
    const tailSeq = (await primary.status()).appliedSeq;
    log(`tail: ${tailSeq - newest.appliedSeq} entries after ${newest.name}`);
    const checkpointColdStarts = async (stop: Stop, what: string): Promise<ColdStart[]> => {
      const starts: ColdStart[] = [];
      for (let r = 0; r < runs; r++) {
        const c = await coldStart(standby, tailSeq, stop);
        starts.push(c);
        log(
          `${what} ${r + 1}: loaded after ${c.loadedMs} ms, eligible after ${c.eligibleMs} ms (load ${c.load})`,
        );
      }
      return starts;
    };
    const fromCheckpoint = await checkpointColdStarts('kill -9', 'checkpoint cold start run');
    const afterStop = await checkpointColdStarts(
      'SIGTERM',
      'checkpoint cold start after a clean stop, run',
    );
    const digests = await digestsAt(primary, standby);

    const ratios: RatioRun[] = [];
    const expectedMs = median(quiet.map((q) => q.writeMs));
    for (let r = 0; r < runs; r++) {
      ratios.push(await writeRatio(client, etcd, standby, expectedMs, r + 1, outsideSeconds));
      const x = ratios[r];
      log(
        `write ratio run ${r + 1}: ${round(x?.withPerSec ?? 0)}/s during the checkpoint (${x?.checkpoint.writeMs} ms), ${round(x?.withoutPerSec ?? 0)}/s outside: ${ratio2(x?.ratio ?? 0)} (load ${x?.checkpoint.load})`,
      );
    }

    const loads = (xs: readonly { load: number }[]): string => xs.map((x) => x.load).join(' / ');
    console.log(
      `coldstart benchmark: ${objects} objects (${historySeq} entries of history), ${runs} runs, medians; load average (1 min) after each run`,
    );
    printTable(
      ['figure', 'median', 'runs', 'load'],
      [
        [
          'cold start, re-fold (ms)',
          round(median(refold.map((c) => c.eligibleMs))),
          refold.map((c) => c.eligibleMs).join(' / '),
          loads(refold),
        ],
        ...checkpointColdStartRows(
          `cold start, checkpoint + ${tailSeq - newest.appliedSeq} tail (ms)`,
          fromCheckpoint,
        ),
        ...checkpointColdStartRows(
          '  the same after a clean stop (SIGTERM), not kill -9 (ms)',
          afterStop,
        ),
        [
          'checkpoint write, quiet (ms)',
          round(median(quiet.map((q) => q.writeMs))),
          quiet.map((q) => q.writeMs).join(' / '),
          loads(quiet),
        ],
        [
          'checkpoint bytes',
          median(quiet.map((q) => q.info.bytes)),
          quiet.map((q) => q.info.bytes).join(' / '),
          '',
        ],
        [
          'checkpoint write, under load (ms)',
          round(median(ratios.map((x) => x.checkpoint.writeMs))),
          ratios.map((x) => x.checkpoint.writeMs).join(' / '),
          loads(ratios.map((x) => x.checkpoint)),
        ],
        [
          'writes/s during a checkpoint',
          round(median(ratios.map((x) => x.withPerSec))),
          ratios.map((x) => round(x.withPerSec)).join(' / '),
          '',
        ],
        [
          'writes/s outside it',
          round(median(ratios.map((x) => x.withoutPerSec))),
          ratios.map((x) => round(x.withoutPerSec)).join(' / '),
          '',
        ],
        [
          'ratio',
          ratio2(median(ratios.map((x) => x.ratio))),
          ratios.map((x) => ratio2(x.ratio)).join(' / '),
          '',
        ],
      ],
    );
    // The 10M size runs alone: the 1M nodes go first.
    await client.close();
    client = undefined;
    await Promise.all(nodes.map((n) => n.kill()));
    const huge =
      hugeObjects === undefined
        ? undefined
        : await hugeColdStart(servers, options, hugeObjects, runs, tailEntries);
    if (huge !== undefined) {
      console.log(
        `coldstart benchmark at ${huge.objects} objects (${huge.historyEntries} entries of history): primary after folding it ${round(huge.primaryStartMs)} ms; checkpoint (by the standby) ${huge.checkpoint.info.bytes} bytes in ${huge.checkpoint.writeMs} ms; cold start from it + ${huge.tailEntries} tail: ${huge.coldStarts.map((c) => c.eligibleMs).join(' / ')} ms to eligible, ${huge.coldStarts.map((c) => c.loadedMs).join(' / ')} ms to loaded (loads ${huge.coldStarts.map((c) => c.load).join(' / ')})`,
      );
    }
    const m = {
      coldStartCheckpointMs: round(median(fromCheckpoint.map((c) => c.eligibleMs))),
      checkpointLoadMs: round(median(fromCheckpoint.map((c) => c.loadedMs ?? NaN))),
      coldStartCheckpointAfterStopMs: round(median(afterStop.map((c) => c.eligibleMs))),
      coldStartRefoldMs: round(median(refold.map((c) => c.eligibleMs))),
      checkpointWriteMs: round(median(quiet.map((q) => q.writeMs))),
      checkpointBytes: median(quiet.map((q) => q.info.bytes)),
    };
    return {
      figures: {
        objects,
        historyEntries: historySeq,
        tailEntries: tailSeq - newest.appliedSeq,
        runs,
        primaryStartMs: round(primaryStartMs),
        ...m,
        [`coldStartCheckpoint${size}Ms`]: m.coldStartCheckpointMs,
        [`checkpointLoad${size}Ms`]: m.checkpointLoadMs,
        [`coldStartCheckpointAfterStop${size}Ms`]: m.coldStartCheckpointAfterStopMs,
        [`coldStartRefold${size}Ms`]: m.coldStartRefoldMs,
        [`checkpointWrite${size}Ms`]: m.checkpointWriteMs,
        [`checkpointBytes${size}`]: m.checkpointBytes,
        checkpointWriteUnderLoadMs: round(median(ratios.map((x) => x.checkpoint.writeMs))),
        writesPerSecDuringCheckpoint: round(median(ratios.map((x) => x.withPerSec))),
        writesPerSecWithout: round(median(ratios.map((x) => x.withoutPerSec))),
        writeRatioDuringCheckpoint: ratio2(median(ratios.map((x) => x.ratio))),
        checkpointReadBackStalls: readBackStalls,
        ...(huge === undefined
          ? {}
          : {
              hugeObjects: huge.objects,
              hugeHistoryEntries: huge.historyEntries,
              primaryStart10MMs: round(huge.primaryStartMs),
              coldStartCheckpoint10MMs: round(median(huge.coldStarts.map((c) => c.eligibleMs))),
              checkpointLoad10MMs: round(median(huge.coldStarts.map((c) => c.loadedMs ?? NaN))),
              checkpointWrite10MMs: huge.checkpoint.writeMs,
              checkpointBytes10M: huge.checkpoint.info.bytes,
            }),
        load: {
          refold: refold.map((c) => c.load),
          checkpointColdStart: fromCheckpoint.map((c) => c.load),
          checkpointColdStartAfterStop: afterStop.map((c) => c.load),
          checkpointWrite: quiet.map((q) => q.load),
          ratio: ratios.map((x) => x.checkpoint.load),
        },
      },
      verdicts: [
        verdict(
          'the nodes folded the seeded history',
          targetSeq > historySeq && seeded.every((ok) => ok === true),
          `primary applied ${targetSeq} of ${historySeq} seeded entries (+ its fence); first and last seeded objects read back complete: ${seeded.join(', ')}`,
        ),
        verdict(
          "the standby cold-started from a checkpoint has the primary's digest",
          digests.primary === digests.standby,
          `primary ${digests.primary}, standby ${digests.standby}`,
        ),
        verdict(
          'the cold starts loaded a checkpoint',
          [...fromCheckpoint, ...afterStop].every((c) => c.loadedMs !== undefined),
          [...fromCheckpoint, ...afterStop].map((c) => String(c.loadedMs)).join(' / '),
        ),
        ...(huge === undefined
          ? []
          : [
              verdict(
                `at ${huge.objects} objects, the standby cold-started from a checkpoint has the primary's digest`,
                huge.digests.primary === huge.digests.standby &&
                  huge.coldStarts.every((c) => c.loadedMs !== undefined),
                `primary ${huge.digests.primary}, standby ${huge.digests.standby}; loaded after ${huge.coldStarts.map((c) => String(c.loadedMs)).join(' / ')} ms`,
              ),
            ]),
      ],
    };
  } finally {
    await client?.close().catch(() => undefined);
    await Promise.all(nodes.map((n) => n.kill()));
  }
}
