// `understudy status` and `understudy switchover` against three real node processes, etcd and
// nats-server: the real CLI runs as a child process. One cluster for the whole file.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdElector } from '../../src/adapters/etcd/etcdElector.ts';
import { systemClock } from '../../src/adapters/systemClock.ts';
import { type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import type { LeaderView } from '../../src/ports/elector.ts';
import { cliEntry } from '../../src/process/packageInfo.ts';
import { startEtcd, startNats, type EtcdHandle, type NatsServerHandle } from '../harness/index.ts';
import { runCli, type CliResult } from '../harness/cli.ts';
import { expectAcksInLog, expectLinearHistory } from '../harness/logChecks.ts';
import { NodeFleet } from '../../src/tools/localCluster/nodeFleet.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import { Workload } from '../../src/tools/localCluster/workload.ts';

const CLUSTER = 'ops';
const TTL_MS = 5000;

interface StatusRowJson {
  readonly id: string;
  readonly state: string;
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly lagEntries: number | null;
  readonly lagMs: number | null;
  readonly address: string;
  readonly leader: boolean;
}

interface SwitchoverJson {
  readonly from: string;
  readonly to: string;
  readonly fromEpoch: number;
  readonly toEpoch: number;
  readonly tookMs: number;
  readonly handoverMs: number;
}

describe('understudy status and switchover (three node processes, real etcd and nats-server)', () => {
  let etcd: EtcdHandle;
  let nats: NatsServerHandle;
  let fleet: NodeFleet;
  let client: UnderstudyClient;
  let access: string[];

  beforeAll(async () => {
    etcd = await startEtcd();
    nats = await startNats();
    fleet = await NodeFleet.start(['n1', 'n2', 'n3'], {
      cluster: CLUSTER,
      nats: [nats.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: TTL_MS,
    });
    await fleet.primary(60_000);
    client = await createClient({
      servers: nats.url,
      cluster: CLUSTER,
      requestTimeoutMs: 500,
      deadlineMs: 30_000,
      backoff: { initialMs: 10, maxMs: 100 },
    });
    for (const node of ['s1', 's2', 's3']) {
      for (const n of [0, 1]) await client.mountSegment(`${node}-seg${n}`, node, 1 << 30);
    }
    access = ['--cluster', CLUSTER, '--etcd', etcd.endpoint];
  }, 120_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await fleet?.[Symbol.asyncDispose]();
    await nats?.[Symbol.asyncDispose]();
    await etcd?.[Symbol.asyncDispose]();
  }, 60_000);

  /** `status --json` until it shows three nodes, one of them a primary holding the key. */
  async function statusRows(): Promise<StatusRowJson[]> {
    const deadline = Date.now() + 30_000;
    let last: CliResult | undefined;
    while (Date.now() < deadline) {
      last = await runCli(['status', '--json', ...access]);
      if (last.code === 0) {
        const rows = JSON.parse(last.stdout) as StatusRowJson[];
        const primaries = rows.filter((r) => r.state === 'primary');
        if (rows.length === 3 && primaries.length === 1 && primaries[0]?.leader === true) {
          return rows;
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`status never showed 3 nodes and a primary: ${JSON.stringify(last)}`);
  }

  it('status shows one row per node, one primary, and the leader epoch', async () => {
    const primary = await fleet.primary(30_000);
    const primaryStatus = await primary.status();
    const rows = await statusRows();
    expect(rows.map((r) => r.id)).toEqual(['n1', 'n2', 'n3']);
    const row = rows.find((r) => r.state === 'primary')!;
    expect(row.id).toBe(primary.id);
    expect(row.epoch).toBe(primaryStatus.epoch);
    expect(row.lagEntries).toBe(0);
    for (const r of rows) {
      expect(r.epoch).toBe(primaryStatus.epoch);
      expect(r.address).toBe(fleet.node(r.id).url);
      expect(r.lagEntries).not.toBeNull();
    }

    const table = await runCli(['status', ...access]);
    expect(table.code).toBe(0);
    console.log(`understudy status:\n${table.stdout}`);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toContain(`leader ${primary.id} epoch ${primaryStatus.epoch}`);
    expect(lines[1]).toMatch(/^ID\s+STATE\s+EPOCH\s+APPLIED\s+LAG\s+LAG_MS\s+LAST_VERIFICATION/);
    expect(lines).toHaveLength(5);
    expect(lines.filter((l) => /\sprimary\s/.test(l))).toHaveLength(1);
  });

  it('status --watch redraws in place until Ctrl-C, then exits 0', async () => {
    const child = spawn(
      process.execPath,
      [cliEntry(), 'status', '--watch', '--interval', '200ms', ...access],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UNDERSTUDY_CONFIG: '' } },
    );
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const deadline = Date.now() + 30_000;
      while (stdout.split('refreshed').length < 4 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(stdout.split('\x1b[H\x1b[2J').length).toBeGreaterThanOrEqual(4);
      expect(stdout).toContain('LAST_VERIFICATION');
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('status without a cluster is a usage error (exit 2); an unreachable etcd fails (exit 1)', async () => {
    const usage = await runCli(['status', '--etcd', etcd.endpoint]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('cluster');
    const down = await runCli(['status', '--cluster', CLUSTER, '--etcd', 'http://127.0.0.1:9']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach etcd at http://127.0.0.1:9: ');
  });

  it('switchover --to moves the primary to the named node under load, without a TTL wait, losing no acknowledged write', async () => {
    const old = await fleet.primary(30_000);
    const target = fleet.nodes.find((n) => n !== old)!;
    const load = new Workload(client, { concurrency: 8, keyPrefix: 'to' }).start();
    await load.until(() => load.acks.length >= 300, 30_000, '300 acks');
    const ackedBefore = load.acks.length;
    const result = await runCli(['switchover', '--to', target.id, '--json', ...access]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as SwitchoverJson;
    expect(report.from).toBe(old.id);
    expect(report.to).toBe(target.id);
    expect(report.toEpoch).toBeGreaterThan(report.fromEpoch);
    expect(report.tookMs).toBeLessThan(TTL_MS);
    console.log(
      `switchover --to ${target.id}: ${report.tookMs} ms to a serving primary (handover ${report.handoverMs} ms; TTL ${TTL_MS} ms; 8 writers)`,
    );
    expect((await fleet.primary(30_000)).id).toBe(target.id);
    await load.until(() => load.acks.length >= ackedBefore + 300, 30_000, 'acks after');
    await load.stop();
    expect(load.failures).toEqual([]);
    const ackTimes = load.acks.map((a) => a.ackedAt).sort((a, b) => a - b);
    const longestPause = Math.max(...ackTimes.slice(1).map((t, i) => t - (ackTimes[i] ?? t)));
    console.log(`switchover --to: longest pause between acknowledgements ${longestPause} ms`);

    // The old primary stays up and follows as a standby.
    const oldStatus = await old.waitForStatus((s) => s.role === 'standby', 30_000);
    expect(oldStatus.fences).toBe(0);
    expect(old.running).toBe(true);

    const log = await readLoggedEvents(nats.url, CLUSTER);
    expectLinearHistory(log);
    expectAcksInLog(load.acks, log);
    const epochs = log.filter((l) => l.event.op === 'EPOCH');
    expect(epochs.at(-1)?.event).toMatchObject({ op: 'EPOCH', nodeId: target.id });
  });

  it('switchover without --to hands over to another node; the old primary becomes a standby', async () => {
    const old = await fleet.primary(30_000);
    const result = await runCli(['switchover', ...access]);
    expect(result.code, result.stderr).toBe(0);
    const match = /^switchover (\S+) \(epoch (\d+)\) -> (\S+) \(epoch (\d+)\) in (\d+) ms/.exec(
      result.stdout,
    );
    expect(match, result.stdout).not.toBeNull();
    const [, from, , to, , tookMs] = match!;
    expect(from).toBe(old.id);
    expect(to).not.toBe(old.id);
    expect(Number(tookMs)).toBeLessThan(TTL_MS);
    console.log(`switchover (any standby, idle): ${tookMs} ms to a serving primary`);
    await old.waitForStatus((s) => s.role === 'standby', 30_000);
    const rows = await statusRows();
    expect(rows.find((r) => r.state === 'primary')?.id).toBe(to);
  });

  it('switchover refuses an unknown or current target (exit 1) and leaves the primary serving', async () => {
    const primary = await fleet.primary(30_000);
    const before = await primary.status();
    const unknown = await runCli(['switchover', '--to', 'nosuch', ...access]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('nosuch');
    const self = await runCli(['switchover', '--to', primary.id, ...access]);
    expect(self.code).toBe(1);
    const after = await primary.status();
    expect(after.role).toBe('primary');
    expect(after.epoch).toBe(before.epoch);
    await client.putStart('still-serving', 1024, 2);
  });

  it('etcd elector: resign({handoverTo}) rewrites the key with the hint (same epoch) before deleting it', async () => {
    const elector = (nodeId: string) =>
      createEtcdElector({
        client: { endpoints: [etcd.endpoint] },
        cluster: 'hint',
        nodeId,
        ttlMs: TTL_MS,
        clock: systemClock,
      });
    const holder = elector('h1');
    const watcher = elector('h2');
    try {
      await holder.start();
      const won = await holder.campaign({ nodeId: 'h1', address: 'a1' });
      if (!won.won) throw new Error('the campaign on an empty cluster was lost');
      const seen: (LeaderView | null)[] = [];
      const stop = watcher.observe((leader) => seen.push(leader));
      const waitFor = async (n: number): Promise<void> => {
        const deadline = Date.now() + 20_000;
        while (seen.length < n && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
      };
      await waitFor(1);
      await holder.resign({ handoverTo: 'h2' });
      await waitFor(3);
      stop();
      expect(seen).toEqual([
        { nodeId: 'h1', address: 'a1', epoch: won.epoch },
        { nodeId: 'h1', address: 'a1', epoch: won.epoch, handoverTo: 'h2' },
        null,
      ]);
    } finally {
      await holder.close();
      await watcher.close();
    }
  });
});
