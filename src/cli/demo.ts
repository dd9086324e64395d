// `understudy demo` (what `npm run demo` runs): a local cluster - etcd, nats-server and three
// master nodes on free ports - a write load with a live progress line, a kill -9 of the
// primary, and the failover's timeline with the RTO and the number of acknowledged writes lost.
import { Etcd3 } from 'etcd3';
import type { Command } from 'commander';
import { leaderKey } from '../adapters/etcd/etcdElection.ts';
import { startEtcd } from '../tools/localCluster/etcd.ts';
import { startNats } from '../tools/localCluster/nats.ts';
import { NodeFleet } from '../tools/localCluster/nodeFleet.ts';
import { readLoggedEvents } from '../tools/localCluster/readLoggedEvents.ts';
import { Workload } from '../tools/localCluster/workload.ts';
import { MIN_LEASE_TTL_MS } from '../config/config.ts';
import { ConfigError, SettingValueError } from '../config/settings.ts';
import { duration, integer } from '../config/settingTypes.ts';
import { MAX_GROUPS } from '../domain/model/groups.ts';
import { demoClient, runGroupsDemo } from './groupsDemo.ts';

interface DemoOptions {
  readonly leaseTtl: string;
  readonly before: string;
  readonly after: string;
  readonly concurrency: string;
  readonly groups: string;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run a local cluster, kill its primary under load, and print the failover timeline',
    )
    .option('--lease-ttl <duration>', 'lease TTL of the nodes (whole seconds)', '2s')
    .option('--before <duration>', 'how long the load runs before the kill', '5s')
    .option('--after <duration>', 'how long the load runs after the failover', '3s')
    .option('--concurrency <n>', 'concurrent writers', '16')
    .option(
      '--groups <n>',
      'groups of the keyspace, each its own primary: kill -9 of the process leading the most',
      '1',
    )
    .addHelpText(
      'after',
      `
Needs nats-server and etcd on PATH (in a clone, npm run demo installs them on Debian). The
live progress line is shown only when stdout is a terminal.
Exit codes: 0 no acknowledged write lost; 1 a write was lost or the demo failed; 2 usage.

Examples:
  understudy demo                                  (three nodes, kill -9 of the primary)
  understudy demo --lease-ttl 5s --before 10s --concurrency 64
  understudy demo --groups 4                       (4 primaries; only the dead one's groups fail over)
  understudy demo > timeline.txt                   (no progress line, just the timeline)`,
    )
    .action(async (options: DemoOptions) => {
      let settings: DemoSettings;
      try {
        settings = demoSettings(options);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`understudy demo: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      process.exitCode = await runDemo(settings);
    });
}

interface DemoSettings {
  readonly ttl: number;
  readonly beforeMs: number;
  readonly afterMs: number;
  readonly concurrency: number;
  readonly groups: number;
}

/** The demo's flags, checked; throws {@link ConfigError} naming the flag. */
function demoSettings(options: DemoOptions): DemoSettings {
  const problems: string[] = [];
  const read = <T>(flag: string, parse: () => T, fallback: T): T => {
    try {
      return parse();
    } catch (err) {
      if (!(err instanceof SettingValueError)) throw err;
      problems.push(`${flag}: ${err.message}`);
      return fallback;
    }
  };
  const settings = {
    ttl: read(
      '--lease-ttl',
      () => duration({ min: MIN_LEASE_TTL_MS, step: 1000 }).parse(options.leaseTtl),
      0,
    ),
    beforeMs: read('--before', () => duration({ min: 0 }).parse(options.before), 0),
    afterMs: read('--after', () => duration({ min: 0 }).parse(options.after), 0),
    concurrency: read('--concurrency', () => integer({ min: 1 }).parse(options.concurrency), 0),
    groups: read(
      '--groups',
      () => {
        const groups = integer({ min: 1 }).parse(options.groups);
        if (groups > MAX_GROUPS) throw new SettingValueError(`at most ${MAX_GROUPS}`);
        return groups;
      },
      1,
    ),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}

async function runDemo(options: DemoSettings): Promise<number> {
  const { ttl } = options;
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  };
  const onSignal = (): void => {
    process.stdout.write('\ninterrupted: stopping the cluster\n');
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    const etcd = await startEtcd();
    cleanups.push(async () => {
      await etcd[Symbol.asyncDispose]();
    });
    const nats = await startNats();
    cleanups.push(async () => {
      await nats[Symbol.asyncDispose]();
    });
    say(`etcd        ${etcd.endpoint}`);
    say(`nats-server ${nats.url} (JetStream, file storage)`);
    const cluster = 'demo';
    const fleet = await NodeFleet.start(['n1', 'n2', 'n3'], {
      cluster,
      nats: [nats.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: ttl,
      ...(options.groups > 1 ? { extraArgs: ['--groups', String(options.groups)] } : {}),
    });
    cleanups.push(() => fleet[Symbol.asyncDispose]());
    if (options.groups > 1)
      return await runGroupsDemo(fleet, nats.url, cluster, options, say, cleanups);
    const primary = await fleet.primary(60_000);
    for (const n of fleet.nodes) say(`node ${n.id}     ${n.url}  pid ${n.pid ?? '?'}`);
    say(`primary: ${primary.id} (lease TTL ${ttl} ms)`);

    const client = await demoClient(nats.url, cluster, 1, cleanups);

    const etcdClient = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => {
      etcdClient.close();
      return Promise.resolve();
    });
    const keyEvents: Array<{ at: number; what: string }> = [];
    const watcher = await etcdClient.watch().key(leaderKey(cluster)).create();
    cleanups.push(() => watcher.cancel());
    watcher.on('delete', () => keyEvents.push({ at: Date.now(), what: 'deleted' }));
    watcher.on('put', (kv) => {
      const leader = JSON.parse(kv.value.toString()) as { nodeId: string };
      keyEvents.push({ at: Date.now(), what: `${leader.nodeId} (epoch ${kv.create_revision})` });
    });

    const load = new Workload(client, { concurrency: options.concurrency }).start();
    const started = Date.now();
    let lastCount = 0;
    let lastAt = started;
    // A progress line rewritten in place: only on a terminal (a log file would fill with \r).
    const tty = process.stdout.isTTY;
    const progress = setInterval(() => {
      const now = Date.now();
      const rate = Math.round(((load.acks.length - lastCount) * 1000) / Math.max(1, now - lastAt));
      lastCount = load.acks.length;
      lastAt = now;
      process.stdout.write(
        `\r  ${((now - started) / 1000).toFixed(1)} s  acknowledged ${load.acks.length} writes  ${rate}/s   `,
      );
    }, 250);
    if (!tty) {
      clearInterval(progress);
      say(`  write load: ${options.concurrency} writers for ${options.beforeMs} ms, then kill -9`);
    }
    await sleep(options.beforeMs);

    const others = fleet.nodes.filter((n) => n !== primary);
    const marks = others.map((n) => n.logs.length);
    const killedAt = Date.now();
    await primary.kill();
    process.stdout.write(`${tty ? '\n' : ''}  kill -9 ${primary.id} (pid ${primary.pid ?? '?'})\n`);
    const next = await fleet.primary(60_000, primary);
    const fence = await next.waitForLog(
      (l) => l.event === 'fenceWritten',
      30_000,
      marks[others.indexOf(next)] ?? 0,
    );
    const fenceSeq = fence['seq'] as number;
    await load.until(() => load.firstAckAfter(killedAt, fenceSeq) !== undefined, 60_000, 'serving');
    const served = load.firstAckAfter(killedAt, fenceSeq)!;
    await sleep(options.afterMs);
    clearInterval(progress);
    await load.stop();
    if (tty) process.stdout.write('\n');

    const log = await readLoggedEvents(nats.url, cluster);
    let lost = 0;
    for (const ack of load.acks) {
      const logged = log[ack.seq - 1];
      const key = logged !== undefined && 'key' in logged.event ? logged.event.key : undefined;
      if (key !== ack.key) lost++;
    }
    const gone = keyEvents.find((e) => e.at >= killedAt && e.what === 'deleted');
    const elected = keyEvents.find((e) => e.at >= killedAt && e.what !== 'deleted');
    const at = (t: number | undefined): string =>
      t === undefined ? '     ?' : `+${String(t - killedAt).padStart(5)} ms`;
    say('');
    say('failover timeline');
    say(`  ${at(killedAt)}  primary lost: ${primary.id} killed with SIGKILL`);
    say(`  ${at(gone?.at)}  leader key gone (lease expired in etcd)`);
    say(`  ${at(elected?.at)}  elected: ${elected?.what ?? '?'}`);
    say(`  ${at(fence.time)}  fenced: ${next.id} appended EPOCH at seq ${fenceSeq}`);
    say(
      `  ${at(served.ackedAt)}  serving: first write acknowledged by ${next.id} (seq ${served.seq})`,
    );
    say('');
    say(`RTO (kill to first acknowledged write, at the client): ${served.ackedAt - killedAt} ms`);
    say(`acknowledged writes: ${load.acks.length}; lost: ${lost}; log entries: ${log.length}`);
    return lost === 0 ? 0 : 1;
  } catch (err) {
    process.stderr.write(`\ndemo failed: ${String(err)}\n`);
    return 1;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
