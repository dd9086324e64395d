// `npm run bench -- sync [--quick]`: full sync and verification at scale, over a real
// nats-server on loopback.
//
// A worker thread plays the primary: it builds a state of N objects by folding synthetic
// PUT_START+PUT_END events (2 replicas of 4 KiB on 8 segments), listens on the admin subjects
// and, during each full sync, keeps folding new writes (1000 events every 50 ms) into its
// committed state, as a primary serving writes would. The main thread plays the standby: it
// fetches a full sync (chunks of 10,000 records, in parts under max_payload), rebuilds the state
// and checks the whole-state digest (inside the fetch), then the bench checks it against the
// primary's digest at the frozen seq. Each size is synced 3 times; medians are reported.
//
// Verification: with writes stopped and the standby at the primary's seq, the standby sends 3
// rounds (10 % of the shards, up to 100 keys each; rounds 0-2, so each touches shards not seen
// before); the worker times its `verify` handler (parse, answer against 1M objects, encode).
// The same rounds run again unchanged (memoised digests), and once more after one object was
// removed in each of their shards on both sides (every sampled shard changed).
// Verdicts: every full sync's digest equals the primary's at its seq (a mismatch ends the run),
// every verification round answers OK. `--quick` (CI): 2k and 10k objects, 1 run each.
// `--10m` adds a full sync of 10M objects (3 runs; ~15 GB of heap over both threads); `--quick`
// runs that step at 40k objects.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  createNatsAdminClientTransport,
  createNatsAdminServerTransport,
  maxAdminReplyBytes,
} from '../src/adapters/nats/natsAdminTransport.ts';
import { systemClock } from '../src/adapters/systemClock.ts';
import { stateDigest } from '../src/domain/log/checksum.ts';
import { foldAll } from '../src/domain/fold/fold.ts';
import { emptyState, shardRecords } from '../src/domain/model/state.ts';
import { planRound } from '../src/domain/verify/sampling.ts';
import type { LoggedEvent, MetadataEvent, MetadataState } from '../src/domain/model/types.ts';
import { AdminClient, adminHandler } from '../src/admin/adminApi.ts';
import { fetchFullSync, FullSyncSource } from '../src/admin/fullSync.ts';
import { runVerificationRound, verifyOp } from '../src/admin/verification.ts';
import { startNats } from '../test/harness/index.ts';
import { verdict, type BenchOutcome } from './lib/report.ts';
import { foldEvents, logAfter, REPLICAS, SyntheticWrites } from './lib/syntheticWrites.ts';

/** Runs per figure (the median is reported): 3, or 1 in a `--quick` run. */
let RUNS = 3;
/** Full syncs whose digest was checked against the primary's (all equal, or the run ends). */
let digestsEqual = 0;
/** Full syncs run. */
let syncs = 0;
const WRITE_EVERY_MS = 50;
const WRITE_OBJECTS = 500; // PUT_START + PUT_END each: 1000 events per tick, 20k events/s
const CLUSTER = 'syncbench';

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

// ---------------------------------------------------------------------------------------------
// The primary (worker thread)

type ToPrimary =
  | { type: 'build'; objects: number }
  | { type: 'writes'; on: boolean }
  | { type: 'digestAt'; seq: number }
  | { type: 'verifyTimes' }
  | { type: 'touch'; shardIds: number[] }
  | { type: 'stop' };

type FromPrimary =
  | { type: 'ready' }
  | { type: 'built'; appliedSeq: number; objects: number; ms: number }
  | { type: 'writes'; appliedSeq: number; eventsWritten: number }
  | { type: 'digestAt'; seq: number; digest: number | null }
  | { type: 'verifyTimes'; ms: number[] }
  | { type: 'touched'; events: LoggedEvent[] }
  | { type: 'stopped' };

async function primaryWorker(natsUrl: string): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const post = (message: FromPrimary): void => port.postMessage(message);
  const nc = await connect({ servers: natsUrl, name: 'sync-bench-primary' });
  let state = emptyState();
  let writes = new SyntheticWrites();
  let timer: NodeJS.Timeout | undefined;
  let eventsWritten = 0;
  const frozen = new Map<number, MetadataState>();
  const verifyMs: number[] = [];
  const source = new FullSyncSource({
    committed: () => {
      frozen.set(state.appliedSeq, state);
      return { state, lastStreamSeq: state.appliedSeq };
    },
    clock: systemClock,
    maxPartBytes: maxAdminReplyBytes(nc),
  });
  const answer = verifyOp({ committed: () => state, maxGap: 1000, maxMismatches: 100 });
  const handler = adminHandler({
    ...source.ops(),
    verify: (body) => {
      const started = performance.now();
      const reply = answer(body);
      verifyMs.push(performance.now() - started);
      return reply;
    },
  });
  const listener = await createNatsAdminServerTransport({ nc, cluster: CLUSTER }).listen(handler);
  port.on('message', (message: ToPrimary) => {
    switch (message.type) {
      case 'build': {
        clearInterval(timer);
        frozen.clear();
        const started = performance.now();
        writes = new SyntheticWrites();
        state = foldEvents(emptyState(), writes.mounts());
        for (let done = 0; done < message.objects; done += 1000) {
          state = foldEvents(state, writes.objects(Math.min(1000, message.objects - done)));
        }
        post({
          type: 'built',
          appliedSeq: state.appliedSeq,
          objects: state.objectCount,
          ms: performance.now() - started,
        });
        return;
      }
      case 'writes':
        clearInterval(timer);
        post({ type: 'writes', appliedSeq: state.appliedSeq, eventsWritten });
        eventsWritten = 0;
        if (message.on) {
          timer = setInterval(() => {
            const events = writes.objects(WRITE_OBJECTS);
            state = foldEvents(state, events);
            eventsWritten += events.length;
          }, WRITE_EVERY_MS);
        }
        return;
      case 'digestAt': {
        const at = frozen.get(message.seq);
        post({ type: 'digestAt', seq: message.seq, digest: at ? stateDigest(at) : null });
        return;
      }
      case 'verifyTimes':
        post({ type: 'verifyTimes', ms: verifyMs.splice(0) });
        return;
      case 'touch': {
        // One object removed in each shard: the memoised digests of those shards go stale.
        const removals: MetadataEvent[] = [];
        for (const shardId of message.shardIds) {
          const record = shardRecords(state, shardId)[0];
          if (record !== undefined) removals.push({ op: 'REMOVE', key: record.key });
        }
        const events = logAfter(state, removals);
        state = foldAll(state, events);
        post({ type: 'touched', events });
        return;
      }
      case 'stop':
        clearInterval(timer);
        void listener
          .close()
          .then(() => nc.close())
          .then(() => post({ type: 'stopped' }));
        return;
    }
  });
  post({ type: 'ready' });
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'syncPrimary') {
  void primaryWorker((workerData as { natsUrl: string }).natsUrl);
}

// ---------------------------------------------------------------------------------------------
// The standby (main thread)

class PrimaryHandle {
  readonly #worker: Worker;
  readonly #waiting: ((message: FromPrimary) => void)[] = [];

  constructor(natsUrl: string) {
    // tsx's loader is not active in workers: register it there, then load this file.
    const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    this.#worker = new Worker(bootstrap, {
      eval: true,
      workerData: { role: 'syncPrimary', natsUrl },
      resourceLimits: { maxOldGenerationSizeMb: 12_288 },
    });
    this.#worker.on('message', (message: FromPrimary) => this.#waiting.shift()?.(message));
    this.#worker.on('error', (err) => {
      console.error('primary worker failed:', err);
      process.exitCode = 1;
      for (const wake of this.#waiting.splice(0)) wake({ type: 'stopped' });
    });
  }

  next<T extends FromPrimary['type']>(type: T): Promise<Extract<FromPrimary, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.#waiting.push((message) => {
        if (message.type === type) resolve(message as Extract<FromPrimary, { type: T }>);
        else reject(new Error(`expected ${type} from the primary, got ${message.type}`));
      });
    });
  }

  ask<T extends FromPrimary['type']>(
    message: ToPrimary,
    type: T,
  ): Promise<Extract<FromPrimary, { type: T }>> {
    const reply = this.next(type);
    this.#worker.postMessage(message);
    return reply;
  }

  async stop(): Promise<void> {
    await this.ask({ type: 'stop' }, 'stopped');
    await this.#worker.terminate();
  }
}

interface SyncFigures {
  readonly objects: number;
  readonly buildMs: number;
  readonly syncMs: number[];
  readonly bytes: number[];
  readonly chunks: number;
  readonly writtenDuringSync: number[];
}

async function measureSync(
  primary: PrimaryHandle,
  admin: AdminClient,
  objects: number,
): Promise<{ figures: SyncFigures; last: MetadataState }> {
  const built = await primary.ask({ type: 'build', objects }, 'built');
  console.log(`primary built ${built.objects} objects in ${Math.round(built.ms)} ms`);
  const syncMs: number[] = [];
  const bytes: number[] = [];
  const writtenDuringSync: number[] = [];
  let chunks = 0;
  let last: MetadataState | undefined;
  for (let run = 0; run < RUNS; run++) {
    (globalThis as { gc?: () => void }).gc?.();
    await primary.ask({ type: 'writes', on: true }, 'writes');
    const started = performance.now();
    const result = await fetchFullSync(admin);
    const took = performance.now() - started;
    const written = await primary.ask({ type: 'writes', on: false }, 'writes');
    syncs++;
    const expected = await primary.ask(
      { type: 'digestAt', seq: result.state.appliedSeq },
      'digestAt',
    );
    const digest = stateDigest(result.state);
    if (expected.digest !== digest)
      throw new Error(`digest ${digest} differs from the primary's ${expected.digest}`);
    digestsEqual++;
    syncMs.push(took);
    bytes.push(result.bytes);
    writtenDuringSync.push(written.eventsWritten);
    chunks = result.chunks;
    last = result.state;
    console.log(
      `  run ${run + 1}: ${result.state.objectCount} objects at seq ${result.state.appliedSeq}, ${result.chunks} chunks, ${(result.bytes / 1e6).toFixed(1)} MB in ${Math.round(took)} ms; primary folded ${written.eventsWritten} events meanwhile (digest equal)`,
    );
  }
  return {
    figures: {
      objects: built.objects,
      buildMs: built.ms,
      syncMs,
      bytes,
      chunks,
      writtenDuringSync,
    },
    last: last as MetadataState,
  };
}

export async function run(args: string[]): Promise<BenchOutcome> {
  const quick = args.includes('--quick');
  RUNS = quick ? 1 : 3;
  const small = quick ? 2000 : 100_000;
  const large = quick ? 10_000 : 1_000_000;
  // The 10M size runs with --10m (minutes, ~15 GB of heap over both threads); --quick runs the
  // same step at a small size, so CI checks it.
  const huge = args.includes('--10m') ? 10_000_000 : quick ? 40_000 : undefined;
  console.log(
    `sync benchmark: ${RUNS} runs each, median; node ${process.version}; nats-server on loopback; objects with ${REPLICAS} replicas; writes during each sync: ${WRITE_OBJECTS * 2} events every ${WRITE_EVERY_MS} ms`,
  );
  await using nats = await startNats();
  const nc: NatsConnection = await connect({ servers: nats.url, name: 'sync-bench-standby' });
  const primary = new PrimaryHandle(nats.url);
  try {
    await primary.next('ready');
    const admin = new AdminClient(createNatsAdminClientTransport({ nc, cluster: CLUSTER }), 30_000);
    const smallRun = await measureSync(primary, admin, small);
    const largeRun = await measureSync(primary, admin, large);
    const verification = await measureVerification(primary, admin);
    const { verifyMs, roundTrip, warmMs, changedMs, keysChecked } = verification;
    const hugeRun =
      huge === undefined ? undefined : (await measureSync(primary, admin, huge)).figures;
    console.log('');
    console.log(
      'objects    | full sync ms | MB     | chunks | events folded by the primary meanwhile',
    );
    for (const r of [smallRun.figures, largeRun.figures, ...(hugeRun ? [hugeRun] : [])]) {
      console.log(
        `${String(r.objects).padStart(10)} | ${String(Math.round(median(r.syncMs))).padStart(12)} | ${(median(r.bytes) / 1e6).toFixed(1).padStart(6)} | ${String(r.chunks).padStart(6)} | ${median(r.writtenDuringSync)}`,
      );
    }
    console.log(
      `verification round at ${largeRun.figures.objects} objects (10% of shards, <=100 keys each, ${keysChecked} keys checked): primary handler ${verifyMs.map((m) => m.toFixed(1)).join(' / ')} ms (median ${median(verifyMs).toFixed(1)}), standby round trip median ${median(roundTrip).toFixed(1)} ms`,
    );
    return {
      figures: {
        smallObjects: smallRun.figures.objects,
        largeObjects: largeRun.figures.objects,
        fullSync100kMs: Math.round(median(smallRun.figures.syncMs)),
        fullSync100kBytes: median(smallRun.figures.bytes),
        fullSync1MMs: Math.round(median(largeRun.figures.syncMs)),
        fullSync1MBytes: median(largeRun.figures.bytes),
        fullSync1MChunks: largeRun.figures.chunks,
        eventsFoldedDuringSync1M: median(largeRun.figures.writtenDuringSync),
        verifyRoundMs: Number(median(verifyMs).toFixed(2)),
        verifyRoundTripMs: Number(median(roundTrip).toFixed(2)),
        verifyRoundWarmMs: Number(median(warmMs).toFixed(2)),
        verifyRoundChangedMs: Number(median(changedMs).toFixed(2)),
        verifyKeysChecked: keysChecked,
        ...(hugeRun === undefined
          ? {}
          : {
              hugeObjects: hugeRun.objects,
              fullSync10MMs: Math.round(median(hugeRun.syncMs)),
              fullSync10MBytes: median(hugeRun.bytes),
              eventsFoldedDuringSync10M: median(hugeRun.writtenDuringSync),
            }),
      },
      verdicts: [
        verdict(
          "every full sync has the primary's digest at its seq",
          digestsEqual === syncs,
          `${digestsEqual} of ${syncs} full syncs checked equal`,
        ),
        verdict(
          'every verification round answered OK',
          true,
          `${3 * RUNS} rounds (a failed one ends the run)`,
        ),
      ],
    };
  } finally {
    await primary.stop().catch(() => undefined);
    await nc.close();
  }
}

/**
 * Verification at the primary's current size (the last one built): writes stopped, the standby
 * at the primary's seq. In a function of its own so that its states are garbage once it returns.
 */
async function measureVerification(
  primary: PrimaryHandle,
  admin: AdminClient,
): Promise<{
  verifyMs: number[];
  roundTrip: number[];
  warmMs: number[];
  changedMs: number[];
  keysChecked: number;
}> {
  const quiet = await fetchFullSync(admin);
  await primary.ask({ type: 'verifyTimes' }, 'verifyTimes');
  const roundTrip: number[] = [];
  let keysChecked = 0;
  for (let round = 0; round < RUNS; round++) {
    const started = performance.now();
    const outcome = await runVerificationRound(admin, quiet.state, () => quiet.state, round, {
      fraction: 0.1,
      maxKeysPerShard: 100,
    });
    roundTrip.push(performance.now() - started);
    if (outcome.status !== 'OK') throw new Error(`round ${round}: ${outcome.status}`);
    keysChecked = outcome.keysChecked;
  }
  const { ms: verifyMs } = await primary.ask({ type: 'verifyTimes' }, 'verifyTimes');
  // The same rounds again: shard digests and record checksums are memoised per immutable
  // shard, so a shard unchanged since its last round costs the primary far less.
  for (let round = 0; round < RUNS; round++) {
    await runVerificationRound(admin, quiet.state, () => quiet.state, round, {
      fraction: 0.1,
      maxKeysPerShard: 100,
    });
  }
  const { ms: warmMs } = await primary.ask({ type: 'verifyTimes' }, 'verifyTimes');
  console.log(
    `same rounds again (memoised digests): primary handler median ${median(warmMs).toFixed(1)} ms`,
  );
  // The same rounds once more after one object was removed in each of their shards (on both
  // sides), as on a primary taking writes between rounds: every sampled shard changed.
  const sampled = Array.from({ length: RUNS }, (_, round) => planRound(round)).flat();
  const { events } = await primary.ask({ type: 'touch', shardIds: sampled }, 'touched');
  const touched = foldAll(quiet.state, events);
  for (let round = 0; round < RUNS; round++) {
    const outcome = await runVerificationRound(admin, touched, () => touched, round, {
      fraction: 0.1,
      maxKeysPerShard: 100,
    });
    if (outcome.status !== 'OK') throw new Error(`changed round ${round}: ${outcome.status}`);
  }
  const { ms: changedMs } = await primary.ask({ type: 'verifyTimes' }, 'verifyTimes');
  console.log(
    `same rounds after one removal in each of their shards: primary handler median ${median(changedMs).toFixed(1)} ms`,
  );
  return { verifyMs, roundTrip, warmMs, changedMs, keysChecked };
}
