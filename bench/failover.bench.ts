// `npm run bench -- failover [--quick] [--kills N] [--switchovers N] [--pauses N]`: how long the
// cluster stops serving writes when its primary dies, is stopped or is paused, as a client sees
// it.
//
// Three master nodes as processes (lease TTL 2 s) on one etcd and one nats-server, under a
// steady write load through the client library (8 writers, putStart then putEnd per key):
// - RTO: the primary is killed (kill -9) N times (default 10); each time the time from the
//   kill to the first acknowledged write of the new primary (the first ack whose seq is above
//   the new primary's EPOCH fence, found in its `fenceWritten` log line); the killed node is
//   restarted, and the next fault waits until it is ready (`/readyz`: a standby caught up to
//   within its promotion lag), as a rolling restart should, so three nodes stay. (Waiting for
//   `standby` in `/status` was not enough: a restarted node says so while it still folds its
//   way up, and the next switchover then waited up to 1 s for a standby to catch up);
// - switchover: the primary gets SIGTERM (graceful stop: hands over, exits) N times; the time
//   from the signal to the first acknowledged write of the new primary; the node is restarted;
// - pause: the primary gets SIGSTOP for PAUSE_MS (twice the TTL) N times (default 3), then
//   SIGCONT; the client's write throughput (acks/s) from TTL + 1 s after the SIGSTOP to the
//   SIGCONT, as a ratio to the PAUSE_MS before the SIGSTOP (`pauseThroughputRatio`: 1 is no
//   loss; a paused primary that still got requests would cost each a request timeout);
// - lost acknowledged writes: at the end the whole OpLog is read back and every write the
//   client saw acknowledged is looked up at its seq (same op, key and placement); the stream is
//   trimmed below the oldest checkpoint kept, so an acknowledgement below its first seq is
//   looked up in the state, read back through the client (bench/lib/ackCheck.ts);
// - the nodes' state digests at the end, at one seq: equal.
// `--quick` (CI): 1 of each fault, and checkpoints every QUICK_CHECKPOINT_ENTRIES entries with
// one kept, so the stream is trimmed during the run and the check covers a trimmed stream. A
// node looks every 5 s whether one is due, and a run lasts about 20 s with nodes restarting, so
// a quick run also has the primary write one (`POST /admin/checkpoint`) under the final load:
// without it, 3 of 28 runs ended with no checkpoint and an untrimmed stream.
import { randomUUID } from 'node:crypto';
import type { NodeHandle, NodeLogLine } from '../src/tools/localCluster/nodeFleet.ts';
import { readLoggedEvents } from '../src/tools/localCluster/readLoggedEvents.ts';
import { ApiError } from '../src/client/client.ts';
import { CHECKPOINT_PATH } from '../src/process/checkpointRoute.ts';
import { Workload, type AckRecord } from '../src/tools/localCluster/workload.ts';
import { historyBreaks, lostAcks } from './lib/ackCheck.ts';
import { numberFlag } from './lib/args.ts';
import { verdict, type BenchOutcome } from './lib/report.ts';
import { BenchCluster, BenchServers } from './lib/cluster.ts';
import { distribution, median, ms, round, type Distribution } from './lib/stats.ts';
import { printTable } from './lib/table.ts';

const LEASE_TTL_MS = 2000;
const WRITERS = 8;
/** Acknowledgements to see between two faults (steady load before each). */
const ACKS_BETWEEN = 300;
const WAIT_MS = 60_000;
/** How long the primary stays stopped (SIGSTOP) in the pause case. */
const PAUSE_MS = 2 * LEASE_TTL_MS;
/** Checkpoint interval of a `--quick` run (one checkpoint kept): the stream gets trimmed. */
const QUICK_CHECKPOINT_ENTRIES = 500;

const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** Has `node` write a checkpoint now (and trim the stream below the oldest kept). */
async function checkpointNow(node: NodeHandle): Promise<void> {
  const res = await fetch(`${node.url}${CHECKPOINT_PATH}`, { method: 'POST' });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`checkpoint on ${node.id}: ${res.status} ${body}`);
}

/** One fault and what the client saw. */
interface Takeover {
  readonly from: string;
  readonly to: string;
  /** Fault to the first acknowledged write of the new primary, at the client. */
  readonly clientMs: number;
  /** Fault to the new primary's `fenceWritten` log line (its clock: same host). */
  readonly fenceMs: number;
  /** Fault to the new primary's last `candidate` state before its fence (log line). */
  readonly candidateMs: number | undefined;
  /** Fault to the new primary's `serving` log line. */
  readonly servingMs: number | undefined;
  /** Fault to the old primary's `signal` log line (SIGTERM only). */
  readonly signalMs: number | undefined;
  /** Fault to the old primary's `handedOver` log line (SIGTERM only). */
  readonly handedOverMs: number | undefined;
  /** The handover's own duration, as the old primary logged it (`tookMs`), and its parts. */
  readonly handoverTookMs: number | undefined;
  readonly drainMs: number | undefined;
  readonly standbyWaitMs: number | undefined;
  readonly resignMs: number | undefined;
}

/** The fields of a {@link Takeover} that are times in ms. */
type TimingField = {
  [K in keyof Takeover]: Takeover[K] extends number | undefined ? K : never;
}[keyof Takeover];

/** A number field of a log line, if there is one. */
function logged(line: NodeLogLine | undefined, field: string): number | undefined {
  const value = line?.[field];
  return typeof value === 'number' ? value : undefined;
}

async function fenceOf(node: NodeHandle, from: number): Promise<{ seq: number; time: number }> {
  const line = await node.waitForLog((l) => l.event === 'fenceWritten', WAIT_MS, from);
  return { seq: line['seq'] as number, time: line.time };
}

/**
 * The primary after ACKS_BETWEEN acknowledgements of steady load, still the primary when this
 * resolves: on an overloaded machine a primary can lose its lease on its own meanwhile, and a
 * fault aimed at a node that is no longer the primary would measure nothing.
 */
async function steadyPrimary(cluster: BenchCluster, load: Workload): Promise<NodeHandle> {
  for (let attempt = 1; ; attempt++) {
    const primary = await cluster.fleet.primary(WAIT_MS);
    const ackMark = load.acks.length;
    await load.until(() => load.acks.length >= ackMark + ACKS_BETWEEN, WAIT_MS, 'steady load');
    const role = await primary.status().then(
      (s) => s.role,
      () => 'unreachable',
    );
    if (role === 'primary') return primary;
    if (attempt >= 5) throw new Error(`the primary changed on its own ${attempt} times in a row`);
    log(`  ${primary.id} stopped being the primary on its own (${role}); choosing again`);
  }
}

/** Kills or terminates the primary, measures the takeover, restarts the node as a standby. */
async function takeover(
  cluster: BenchCluster,
  load: Workload,
  fault: 'kill' | 'term',
): Promise<Takeover> {
  const { fleet } = cluster;
  const old = await steadyPrimary(cluster, load);
  const others = fleet.nodes.filter((n) => n !== old);
  const marks = new Map(others.map((n) => [n, n.logs.length]));
  const oldMark = old.logs.length;
  const faultAt = Date.now();
  if (fault === 'kill') {
    await old.kill();
  } else {
    const code = await old.terminate(WAIT_MS);
    if (code !== 0) log(`  ${old.id} exited with ${String(code)} after SIGTERM`);
  }
  const next = await fleet.primary(WAIT_MS, old);
  const fence = await fenceOf(next, marks.get(next) ?? 0);
  await load.until(
    () => load.firstAckAfter(faultAt, fence.seq) !== undefined,
    WAIT_MS,
    'an ack from the new primary',
  );
  const firstAck = load.firstAckAfter(faultAt, fence.seq) as AckRecord;
  const since = (line: NodeLogLine | undefined): number | undefined =>
    line === undefined ? undefined : line.time - faultAt;
  const newLines = next.logs.slice(marks.get(next) ?? 0);
  const oldLines = old.logs.slice(oldMark);
  const handedOver = oldLines.find((l) => l.event === 'handedOver');
  const result: Takeover = {
    from: old.id,
    to: next.id,
    clientMs: firstAck.ackedAt - faultAt,
    fenceMs: fence.time - faultAt,
    candidateMs: since(
      newLines.findLast(
        (l) => l.event === 'state' && l.state === 'candidate' && l.time <= fence.time,
      ),
    ),
    servingMs: since(newLines.find((l) => l.event === 'serving')),
    signalMs: since(oldLines.find((l) => l.event === 'signal')),
    handedOverMs: since(handedOver),
    handoverTookMs: logged(handedOver, 'tookMs'),
    drainMs: logged(handedOver, 'drainMs'),
    standbyWaitMs: logged(handedOver, 'standbyWaitMs'),
    resignMs: logged(handedOver, 'resignMs'),
  };
  await old.restart();
  await old.waitForReady(WAIT_MS);
  return result;
}

/** One pause of the primary and the client throughput around it. */
interface Pause {
  readonly from: string;
  readonly to: string | undefined;
  /** Acks per second in the PAUSE_MS before the SIGSTOP. */
  readonly beforePerSec: number;
  /** Acks per second from TTL + 1 s after the SIGSTOP to the SIGCONT. */
  readonly duringPerSec: number;
}

/** Pauses the primary (SIGSTOP) for PAUSE_MS, resumes it, waits for it to be a standby. */
async function pause(cluster: BenchCluster, load: Workload): Promise<Pause> {
  const { fleet } = cluster;
  const old = await steadyPrimary(cluster, load);
  // A full window of steady load before the pause.
  await new Promise((r) => setTimeout(r, PAUSE_MS));
  const pausedAt = Date.now();
  old.pause();
  await new Promise((r) => setTimeout(r, PAUSE_MS));
  const resumedAt = Date.now();
  const count = (from: number, to: number): number =>
    load.acks.filter((a) => a.ackedAt >= from && a.ackedAt < to).length;
  const from = pausedAt + LEASE_TTL_MS + 1000;
  const result: Pause = {
    from: old.id,
    to: undefined,
    beforePerSec: (count(pausedAt - PAUSE_MS, pausedAt) * 1000) / PAUSE_MS,
    duringPerSec: (count(from, resumedAt) * 1000) / Math.max(1, resumedAt - from),
  };
  old.resume();
  const next = await fleet.primary(WAIT_MS, old);
  await old.waitForReady(WAIT_MS);
  return { ...result, to: next.id };
}

/**
 * Failure messages (keys masked, first 80 characters) and how often each came, most frequent
 * first. A retry after a reply lost in a failover gets `exists (put in progress)` or `put
 * already complete`: its first attempt was committed (the client library's documented answer).
 */
function failureKinds(errors: readonly string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const e of errors) {
    const kind = e
      .replace(/"[^"]*"/g, '<key>')
      .slice(0, 80)
      .replaceAll('|', '/');
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]);
}

function row(name: string, d: Distribution): (string | number)[] {
  return [name, d.count, round(d.p50), round(d.p99), round(d.max)];
}

/** Waits for every node to apply `seq`, then reads their state digests at one seq. */
async function digestsAt(cluster: BenchCluster, seq: number): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for (const node of cluster.fleet.nodes) {
    const status = await node.waitForStatus((s) => s.appliedSeq >= seq, WAIT_MS, true);
    const { digest, digestSeq } = status as typeof status & { digest?: string; digestSeq?: number };
    digests.set(node.id, `${String(digest)}@${String(digestSeq)}`);
  }
  return digests;
}

export async function run(args: string[]): Promise<BenchOutcome> {
  const quick = args.includes('--quick');
  const kills = numberFlag(args, '--kills', quick ? 1 : 10);
  const switchovers = numberFlag(args, '--switchovers', quick ? 1 : 10);
  const pauses = numberFlag(args, '--pauses', quick ? 1 : 3);
  console.log(
    `failover bench: 3 nodes as processes, lease TTL ${LEASE_TTL_MS} ms, ${WRITERS} writers; ` +
      `${kills} kill -9, ${switchovers} SIGTERM switchovers and ${pauses} ${PAUSE_MS} ms SIGSTOPs of the primary${quick ? ' (--quick)' : ''}`,
  );
  await using servers = await BenchServers.start();
  const name = `failover${randomUUID().slice(0, 8)}`;
  await using cluster = await BenchCluster.start(servers, {
    cluster: name,
    nodeIds: ['n1', 'n2', 'n3'],
    leaseTtlMs: LEASE_TTL_MS,
    requestTimeoutMs: 500,
    ...(quick
      ? {
          extraArgs: [
            '--checkpoint-interval-entries',
            String(QUICK_CHECKPOINT_ENTRIES),
            '--checkpoint-keep',
            '1',
          ],
        }
      : {}),
  });
  const load = new Workload(cluster.client, {
    concurrency: WRITERS,
    keyPrefix: 'failover',
    replicaNum: 1,
  }).start();

  const failovers: Takeover[] = [];
  const handovers: Takeover[] = [];
  const paused: Pause[] = [];
  try {
    for (let i = 0; i < kills; i++) {
      const t = await takeover(cluster, load, 'kill');
      log(`  kill -9 ${i + 1}/${kills}: ${t.from} -> ${t.to}, first ack after ${t.clientMs} ms`);
      failovers.push(t);
    }
    for (let i = 0; i < switchovers; i++) {
      const t = await takeover(cluster, load, 'term');
      log(
        `  SIGTERM ${i + 1}/${switchovers}: ${t.from} -> ${t.to}, first ack after ${t.clientMs} ms`,
      );
      handovers.push(t);
    }
    for (let i = 0; i < pauses; i++) {
      const p = await pause(cluster, load);
      log(
        `  SIGSTOP ${i + 1}/${pauses}: ${p.from} -> ${String(p.to)}, ${round(p.beforePerSec)} acks/s before, ${round(p.duringPerSec)} acks/s from TTL + 1 s into the pause`,
      );
      paused.push(p);
    }
    const mark = load.acks.length;
    if (quick) await checkpointNow(await cluster.fleet.primary(WAIT_MS));
    await load.until(() => load.acks.length >= mark + ACKS_BETWEEN, WAIT_MS, 'final load');
  } finally {
    await load.stop();
  }
  const entries = await readLoggedEvents(servers.nats.url, name);
  const checked = await lostAcks(load.acks, entries, (key) =>
    cluster.client.get(key).catch((err: unknown) => {
      if (err instanceof ApiError && err.code === 'OBJECT_NOT_FOUND') return undefined;
      throw err;
    }),
  );
  const lost = checked.lost;
  const breaks = historyBreaks(entries);
  const firstSeq = entries[0]?.seq ?? 0;
  const lastSeq = (await (await cluster.fleet.primary(WAIT_MS)).status()).appliedSeq;
  const digests = await digestsAt(cluster, lastSeq);

  const phase = (list: readonly Takeover[], pick: (t: Takeover) => number | undefined) =>
    distribution(list.map(pick).filter((v): v is number => v !== undefined));
  const rto = phase(failovers, (t) => t.clientMs);
  const rtoFence = phase(failovers, (t) => t.fenceMs);
  const switchover = phase(handovers, (t) => t.clientMs);
  const pauseRatios = paused.map((p) => p.duringPerSec / Math.max(1e-9, p.beforePerSec));
  console.log('');
  const rows = (list: readonly Takeover[], phases: [string, TimingField][]) =>
    phases.map(([name, field]) =>
      row(
        name,
        phase(list, (t) => t[field]),
      ),
    );
  printTable(
    ['ms from the fault', 'count', 'p50', 'p99', 'max'],
    [
      ...rows(failovers, [
        ['kill -9: new primary a candidate (log)', 'candidateMs'],
        ['kill -9: EPOCH fence written (log)', 'fenceMs'],
        ['kill -9: serving (log)', 'servingMs'],
        ['kill -9: first ack of the new primary at the client (RTO)', 'clientMs'],
      ]),
      ...rows(handovers, [
        ['SIGTERM: old primary got the signal (log)', 'signalMs'],
        ['SIGTERM: old primary handed over (log)', 'handedOverMs'],
        ['SIGTERM: (the handover itself, its tookMs)', 'handoverTookMs'],
        ['SIGTERM: (handover: drain writes in flight)', 'drainMs'],
        ['SIGTERM: (handover: wait for a caught-up standby)', 'standbyWaitMs'],
        ['SIGTERM: (handover: close and resign)', 'resignMs'],
        ['SIGTERM: new primary a candidate (log)', 'candidateMs'],
        ['SIGTERM: EPOCH fence written (log)', 'fenceMs'],
        ['SIGTERM: serving (log)', 'servingMs'],
        ['SIGTERM: first ack of the new primary at the client', 'clientMs'],
      ]),
    ],
  );
  if (paused.length > 0) {
    console.log('');
    printTable(
      ['SIGSTOP of the primary', 'acks/s before', 'acks/s from TTL + 1 s', 'ratio'],
      paused.map((p) => [
        `${p.from} -> ${String(p.to)}`,
        round(p.beforePerSec),
        round(p.duringPerSec),
        ms(p.duringPerSec / Math.max(1e-9, p.beforePerSec)),
      ]),
    );
  }
  console.log('');
  printTable(
    ['writes', 'count'],
    [
      ['acknowledged', load.acks.length],
      ...failureKinds(load.failures.map((f) => f.error)).map(([error, count]): [string, number] => [
        `failed: ${error}`,
        count,
      ]),
      ['acknowledged, checked against their log entry', checked.inLog],
      ["acknowledged below the stream's first seq, checked against the state", checked.inState],
      ['acknowledged but not in the cluster as acknowledged', lost.length],
      ["log entries (from the stream's first seq)", entries.length],
      ['first seq in the stream (above 1: trimmed by checkpoints)', firstSeq],
      ['breaks of the linear history', breaks],
    ],
  );
  const distinct = new Set(digests.values());
  return {
    figures: {
      leaseTtlMs: LEASE_TTL_MS,
      kills: rto.count,
      rtoP50Ms: round(rto.p50),
      rtoP99Ms: round(rto.p99),
      rtoMaxMs: round(rto.max),
      fenceP50Ms: round(rtoFence.p50),
      switchovers: switchover.count,
      switchoverP50Ms: round(switchover.p50),
      switchoverP99Ms: round(switchover.p99),
      switchoverMaxMs: round(switchover.max),
      pauses: pauseRatios.length,
      pauseMs: PAUSE_MS,
      // The median over the pauses of (acks/s from TTL + 1 s into the pause) / (acks/s before).
      pauseThroughputRatio: ms(median(pauseRatios)),
      pauseThroughputRatioMin: ms(Math.min(...pauseRatios, Infinity)),
      ackedWrites: load.acks.length,
      failedWrites: load.failures.length,
      lostAckedWrites: lost.length,
      historyBreaks: breaks,
      acksCheckedInLog: checked.inLog,
      acksCheckedInState: checked.inState,
      streamFirstSeq: firstSeq,
      logEntries: entries.length,
    },
    verdicts: [
      verdict(
        'no acknowledged write lost',
        lost.length === 0,
        `${lost.length} of ${load.acks.length} acknowledged writes not in the cluster as acknowledged`,
      ),
      verdict('one linear history in the log', breaks === 0, `${breaks} breaks`),
      verdict(
        'every node at one state digest',
        distinct.size === 1,
        [...digests].map(([id, d]) => `${id} ${d}`).join(', '),
      ),
      verdict(
        'every fault measured',
        rto.count === kills && switchover.count === switchovers && paused.length === pauses,
        `${rto.count}/${kills} kills, ${switchover.count}/${switchovers} switchovers, ${paused.length}/${pauses} pauses`,
      ),
      ...(quick
        ? [
            verdict(
              'the stream was trimmed (the check covered a trimmed stream)',
              firstSeq > 1,
              `first seq ${firstSeq}`,
            ),
          ]
        : []),
    ],
  };
}
