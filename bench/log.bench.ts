// OpLog throughput: NATS JetStream (R1 on one server, R3 on a three-server cluster), one entry
// per message and group-committed, its follower read rate, and the etcd OpLog as a baseline.
// Starts its own servers through the test harness. Each figure is the median of 3 runs.
// Also R1 and its follower with an OpLog key (every message signed and checked, oplogKey).
// Verdicts: every append acknowledged (a failed one ends the run), the followers read every
// entry in seq order. `--quick` (CI): 1 run of 1 s each, followers over 5,000 entries.
// Usage: npm run bench -- log [--quick] [--seconds N] [--follow-entries N]
import { randomUUID } from 'node:crypto';
import CRC32 from 'crc-32';
import { connect } from '@nats-io/transport-node';
import { createNatsOpLog } from '../src/adapters/nats/natsOpLog.ts';
import { prefixHash } from '../src/domain/log/checksum.ts';
import type { OpLogEntry } from '../src/domain/log/entry.ts';
import type { OpLog } from '../src/ports/opLog.ts';
import { startEtcd, startNats, startNatsCluster } from '../test/harness/index.ts';
import { numberFlag } from './lib/args.ts';
import { verdict, type BenchOutcome } from './lib/report.ts';
import { median, ms, percentile, round } from './lib/stats.ts';

/** Runs per figure (the median is reported): 3, or 1 in a `--quick` run. */
let RUNS = 3;
/** Follower reads that saw an entry out of seq order (a verdict: 0). */
let outOfOrder = 0;
const PAYLOAD_BYTES = 200;
const SIGNING_KEY = new TextEncoder().encode('a bench key of 32 characters ok!');

function makeEntry(seq: number): OpLogEntry {
  const key = `bench/key-${seq}`;
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(seq % 251);
  return {
    seq,
    epoch: 1,
    ts: Date.now(),
    op: 'PUT_START',
    key,
    payload,
    checksum: CRC32.buf(payload, 0) >>> 0,
    prefixHash: prefixHash(key),
  };
}

interface AppendFigures {
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Appends one entry per call, `inFlight` calls outstanding, for `seconds`. */
async function measureAppends(
  log: OpLog,
  inFlight: number,
  seconds: number,
): Promise<AppendFigures> {
  const writer = log.openWriter({ expectedLastStreamSeq: 0 });
  const latencies: number[] = [];
  let next = 1;
  let outstanding = 0;
  let failed: unknown;
  const start = performance.now();
  const end = start + seconds * 1000;
  await new Promise<void>((resolve) => {
    const issue = (): void => {
      while (outstanding < inFlight && performance.now() < end && failed === undefined) {
        const sentAt = performance.now();
        outstanding++;
        writer.append([makeEntry(next++)]).then(
          () => {
            latencies.push(performance.now() - sentAt);
            outstanding--;
            issue();
          },
          (err: unknown) => {
            failed ??= err;
            outstanding--;
            issue();
          },
        );
      }
      if (outstanding === 0) resolve();
    };
    issue();
  });
  const elapsed = (performance.now() - start) / 1000;
  await writer.close();
  if (failed !== undefined) throw failed instanceof Error ? failed : new Error('append failed');
  latencies.sort((a, b) => a - b);
  return {
    perSec: latencies.length / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

async function medianOfRuns(run: () => Promise<AppendFigures>): Promise<AppendFigures> {
  const results: AppendFigures[] = [];
  for (let i = 0; i < RUNS; i++) results.push(await run());
  return {
    perSec: median(results.map((r) => r.perSec)),
    p50Ms: median(results.map((r) => r.p50Ms)),
    p99Ms: median(results.map((r) => r.p99Ms)),
  };
}

async function natsAppends(
  urls: readonly string[],
  replicas: 1 | 3,
  maxBatchEntries: number,
  inFlight: number,
  seconds: number,
  signingKey?: Uint8Array,
): Promise<AppendFigures> {
  const nc = await connect({ servers: [...urls] });
  try {
    return await medianOfRuns(async () => {
      const log = await createNatsOpLog({
        nc,
        cluster: `bench${randomUUID().slice(0, 8)}`,
        replicas,
        maxBatchEntries,
        ...(signingKey === undefined ? {} : { signingKey }),
      });
      try {
        return await measureAppends(log, inFlight, seconds);
      } finally {
        await log.close();
      }
    });
  } finally {
    await nc.close();
  }
}

async function natsFollowRate(
  url: string,
  entryCount: number,
  signingKey?: Uint8Array,
): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const rates: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const log = await createNatsOpLog({
        nc,
        cluster: `follow${randomUUID().slice(0, 8)}`,
        ...(signingKey === undefined ? {} : { signingKey }),
      });
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      const appends: Promise<unknown>[] = [];
      for (let seq = 1; seq <= entryCount; seq += 100) {
        const count = Math.min(100, entryCount - seq + 1);
        appends.push(writer.append(Array.from({ length: count }, (_, i) => makeEntry(seq + i))));
        if (appends.length >= 200) await Promise.all(appends.splice(0));
      }
      await Promise.all(appends);
      await writer.close();
      const start = performance.now();
      const follower = log.follow(1);
      let seen = 0;
      for await (const batch of follower) {
        for (const entry of batch.entries) if (entry.seq !== ++seen) outOfOrder++;
        if (seen >= entryCount) break;
      }
      follower.close();
      rates.push(seen / ((performance.now() - start) / 1000));
      await log.close();
    }
    return median(rates);
  } finally {
    await nc.close();
  }
}

async function etcdAppends(seconds: number): Promise<AppendFigures | string> {
  let module: { createEtcdOpLog?: (options: unknown) => OpLog };
  try {
    module = (await import('../src/adapters/etcd/etcdOpLog.ts')) as typeof module;
  } catch (err) {
    return `etcd OpLog missing (${(err as Error).message})`;
  }
  const create = module.createEtcdOpLog;
  if (create === undefined) return 'etcd OpLog missing (no createEtcdOpLog)';
  await using etcd = await startEtcd();
  return await medianOfRuns(async () => {
    const log = create({
      client: { endpoints: [etcd.endpoint] },
      cluster: `bench${randomUUID().slice(0, 8)}`,
    });
    try {
      return await measureAppends(log, 64, seconds);
    } finally {
      await log.close();
    }
  });
}

export async function run(args: string[]): Promise<BenchOutcome> {
  const quick = args.includes('--quick');
  RUNS = quick ? 1 : 3;
  const seconds = numberFlag(args, '--seconds', quick ? 1 : 3);
  const followEntries = numberFlag(args, '--follow-entries', quick ? 5000 : 100_000);
  const inFlight = 1000;
  console.log(
    `OpLog bench: ${PAYLOAD_BYTES}-byte payloads, ${inFlight} appends of 1 entry in flight ` +
      `(etcd: 64), median of ${RUNS} runs of ${seconds} s`,
  );

  let r1: AppendFigures;
  let r1Batch1: AppendFigures;
  let followPerSec: number;
  let r1Signed: AppendFigures;
  let followSignedPerSec: number;
  {
    await using server = await startNats();
    r1 = await natsAppends([server.url], 1, 100, inFlight, seconds);
    r1Batch1 = await natsAppends([server.url], 1, 1, inFlight, seconds);
    followPerSec = await natsFollowRate(server.url, followEntries);
    // With an OpLog key (oplogKey): an HMAC-SHA256 per message, written and checked.
    r1Signed = await natsAppends([server.url], 1, 100, inFlight, seconds, SIGNING_KEY);
    followSignedPerSec = await natsFollowRate(server.url, followEntries, SIGNING_KEY);
  }
  let r3: AppendFigures;
  let r3Batch1: AppendFigures;
  {
    await using cluster = await startNatsCluster(3);
    r3 = await natsAppends(cluster.urls, 3, 100, inFlight, seconds);
    r3Batch1 = await natsAppends(cluster.urls, 3, 1, inFlight, seconds);
  }
  const etcd = await etcdAppends(seconds);

  const rows: [string, AppendFigures | string][] = [
    ['NATS R1, group commit <= 100', r1],
    ['NATS R1, 1 entry per message', r1Batch1],
    ['NATS R1, group commit <= 100, signed (oplogKey)', r1Signed],
    ['NATS R3, group commit <= 100', r3],
    ['NATS R3, 1 entry per message', r3Batch1],
    ['etcd OpLog, 64 in flight', etcd],
  ];
  console.log('');
  console.log('| log | entries/s | ack p50 ms | ack p99 ms |');
  console.log('|---|---:|---:|---:|');
  for (const [name, figures] of rows) {
    if (typeof figures === 'string') console.log(`| ${name} | ${figures} | | |`);
    else
      console.log(
        `| ${name} | ${round(figures.perSec)} | ${ms(figures.p50Ms)} | ${ms(figures.p99Ms)} |`,
      );
  }
  console.log(`| NATS R1 follower (${followEntries} entries) | ${round(followPerSec)} | | |`);
  console.log(
    `| NATS R1 follower, signed (${followEntries} entries) | ${round(followSignedPerSec)} | | |`,
  );
  console.log('');

  const etcdPerSec = typeof etcd === 'string' ? null : round(etcd.perSec);
  return {
    figures: {
      followEntries,
      appendPerSecR1: round(r1.perSec),
      appendP50MsR1: ms(r1.p50Ms),
      appendP99MsR1: ms(r1.p99Ms),
      appendPerSecR3: round(r3.perSec),
      appendP50MsR3: ms(r3.p50Ms),
      appendP99MsR3: ms(r3.p99Ms),
      appendPerSecR1Batch1: round(r1Batch1.perSec),
      appendP50MsR1Batch1: ms(r1Batch1.p50Ms),
      appendP99MsR1Batch1: ms(r1Batch1.p99Ms),
      appendPerSecR3Batch1: round(r3Batch1.perSec),
      appendP50MsR3Batch1: ms(r3Batch1.p50Ms),
      appendP99MsR3Batch1: ms(r3Batch1.p99Ms),
      etcdOplogPerSec: etcdPerSec,
      etcdP50Ms: typeof etcd === 'string' ? null : ms(etcd.p50Ms),
      etcdP99Ms: typeof etcd === 'string' ? null : ms(etcd.p99Ms),
      ratioVsEtcd: etcdPerSec === null ? null : Math.round((r1.perSec / etcdPerSec) * 10) / 10,
      followPerSec: round(followPerSec),
      appendPerSecR1Signed: round(r1Signed.perSec),
      appendP99MsR1Signed: ms(r1Signed.p99Ms),
      followSignedPerSec: round(followSignedPerSec),
      signedRatioR1: Math.round((r1Signed.perSec / r1.perSec) * 100) / 100,
      signedRatioFollow: Math.round((followSignedPerSec / followPerSec) * 100) / 100,
    },
    verdicts: [
      verdict(
        'the followers read every entry in seq order',
        outOfOrder === 0,
        `${outOfOrder} out of order`,
      ),
    ],
  };
}
