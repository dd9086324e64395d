// A node whose OpLog key is not the cluster's, end to end: three node processes with a key over
// real nats-server and etcd, and a fourth with another key. Regression test of issue 25 fault 3:
// such a node started, passed over every message the primary wrote, reported lag 0 and /readyz
// 200 while thousands of entries behind, and once the others died won the leader key again and
// again without ever serving.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { oplogKeyId } from '../../src/adapters/nats/batchSignature.ts';
import { oplogSigningKey } from '../../src/config/credentials.ts';
import { NodeHandle, type NodeLogLine } from '../../src/tools/localCluster/nodeFleet.ts';
import { Workload } from '../../src/tools/localCluster/workload.ts';
import { startE2eCluster, type E2eCluster } from '../harness/e2eCluster.ts';

const CLUSTER = 'keyed';
const TTL = 2000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A key file with `content` in a temporary directory. */
async function keyFile(name: string, content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'understudy-key-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  await writeFile(path, `${content}\n`);
  return path;
}

const idOf = (path: string): string => oplogKeyId(oplogSigningKey({ oplogKeyFile: path })!);

/** Three nodes signing with `clusterKey`. */
function startCluster(clusterKey: string): Promise<E2eCluster> {
  return startE2eCluster(cleanups, {
    extraArgs: ['--oplog-key-file', clusterKey],
    cluster: CLUSTER,
    leaseTtlMs: TTL,
    deadlineMs: 30_000,
    maxBackoffMs: 100,
    segments: [
      ['s1-seg', 's1'],
      ['s2-seg', 's2'],
    ],
  });
}

/** A fourth node of the cluster with its own flags and environment. */
async function startFourth(
  cluster: E2eCluster,
  id: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<NodeHandle> {
  const node = await NodeHandle.start(id, {
    cluster: CLUSTER,
    nats: [cluster.nats.url],
    etcd: [cluster.etcd.endpoint],
    leaseTtlMs: TTL,
    extraArgs: args,
    env,
  });
  cleanups.push(() => node.kill());
  return node;
}

/** Resolves with the exit code, or fails after `timeoutMs`. */
async function exitCode(node: NodeHandle, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${node.id} still runs after ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([node.exited(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** 60+ acknowledged writes, so the primary writes dozens of OpLog messages. */
async function write(cluster: E2eCluster, prefix: string): Promise<void> {
  const load = new Workload(cluster.client, { concurrency: 2, keyPrefix: prefix }).start();
  await load.until(() => load.acks.length >= 60, 30_000, `60 acks (${prefix})`);
  await load.stop();
}

const errorLines = (node: NodeHandle): NodeLogLine[] => node.logs.filter((l) => l['level'] === 50);

describe('OpLog key ids end to end (real etcd and nats-server, node processes)', () => {
  it("a node started with another OpLog key than the cluster's, or without one, exits 2 with one log line naming --oplog-key-file and both key ids; the cluster serves on", async () => {
    const clusterKey = await keyFile('cluster.key', 'the cluster key of this e2e test');
    const wrongKey = await keyFile('wrong.key', 'another key, not the cluster one');
    const cluster = await startCluster(clusterKey);
    await write(cluster, 'before');

    const wrong = await startFourth(cluster, 'n4', ['--oplog-key-file', wrongKey]);
    expect(await exitCode(wrong, 30_000), wrong.stderr).toBe(2);
    const lines = errorLines(wrong);
    expect(lines, JSON.stringify(wrong.logs)).toHaveLength(1);
    const line = lines[0]!;
    expect(line.event).toBe('oplogKeyMismatch');
    expect(line.msg).toContain('--oplog-key-file');
    expect(line.msg).toContain('UNDERSTUDY_OPLOG_KEY');
    expect(line.msg).toContain(`key id ${idOf(wrongKey)}`);
    expect(line.msg).toContain(`key id ${idOf(clusterKey)}`);
    expect(line.msg).not.toContain('the cluster key of this e2e test');
    expect(wrong.logs.some((l) => l.event === 'started')).toBe(false);

    const keyless = await startFourth(cluster, 'n5', []);
    expect(await exitCode(keyless, 30_000), keyless.stderr).toBe(2);
    expect(errorLines(keyless).map((l) => l.msg)).toEqual([
      expect.stringContaining(
        `this node has no OpLog key, but cluster ${CLUSTER} signs its log (key id ${idOf(clusterKey)}`,
      ),
    ]);

    // The cluster did not notice: it serves, and every node still has the one key.
    await write(cluster, 'after');
    for (const node of cluster.fleet.nodes) expect((await node.status()).skipped).toBe(0);
  });

  it("a follower whose key is not the cluster's (start-up check skipped) passes over the primary's messages: lag > 0, /readyz not 200, and with every other node dead it never becomes primary", async () => {
    const clusterKey = await keyFile('cluster.key', 'the cluster key of this e2e test');
    const wrongKey = await keyFile('wrong.key', 'another key, not the cluster one');
    const cluster = await startCluster(clusterKey);
    await write(cluster, 'before');
    const wrong = await startFourth(
      cluster,
      'n4',
      ['--oplog-key-file', wrongKey, '--max-lag-for-promotion', '10'],
      { UNDERSTUDY_TEST_HOOKS: '1', UNDERSTUDY_TEST_SKIP_OPLOG_KEY_CHECK: 'all' },
    );
    // It full-syncs from the primary over the admin channel, then can read nothing more.
    const synced = await wrong.waitForStatus((s) => s.role === 'standby', 60_000);
    await write(cluster, 'after');
    const primary = await cluster.fleet.primary(30_000);
    const { appliedSeq: primarySeq } = await primary.status();
    const behind = await wrong.waitForStatus(
      (s) => s.skipped > 10 && s.logLastSeq - s.appliedSeq > 10,
      30_000,
    );
    console.log(
      `wrong key: applied ${behind.appliedSeq} (primary ${primarySeq}, synced at ${synced.appliedSeq}), skipped ${behind.skipped}, lag ${behind.logLastSeq - behind.appliedSeq}`,
    );
    expect(behind.appliedSeq).toBeLessThan(primarySeq);
    expect(wrong.logs.some((l) => l.event === 'logMessageSkipped')).toBe(true);
    const readyz = await fetch(`${wrong.url}/readyz`);
    const body = (await readyz.json()) as { reason?: string };
    expect(readyz.status).toBe(503);
    expect(body.reason).toMatch(/^lag \d+ exceeds 10 entries$/);

    // Every other node dies: the leader key expires, and this node must not take it.
    for (const node of cluster.fleet.nodes) await node.kill();
    const deadline = Date.now() + 3 * TTL + 3000;
    while (Date.now() < deadline) {
      const status = await wrong.status();
      expect(status.role).toBe('standby');
      expect(status.promotions).toBe(0);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(wrong.logs.some((l) => l.event === 'state' && l.state === 'candidate')).toBe(false);
    expect((await fetch(`${wrong.url}/readyz`)).status).toBe(503);
  });

  it("a running node whose key is not the cluster's (start-up check skipped, the key changed under it) stops at the first message signed under the cluster's key: one log line and exit 2", async () => {
    const clusterKey = await keyFile('cluster.key', 'the cluster key of this e2e test');
    const wrongKey = await keyFile('wrong.key', 'another key, not the cluster one');
    const cluster = await startCluster(clusterKey);
    await write(cluster, 'before');
    const wrong = await startFourth(cluster, 'n4', ['--oplog-key-file', wrongKey], {
      UNDERSTUDY_TEST_HOOKS: '1',
      UNDERSTUDY_TEST_SKIP_OPLOG_KEY_CHECK: 'startup',
    });
    await wrong.waitForStatus((s) => s.role === 'standby', 60_000);
    await write(cluster, 'after');
    expect(await exitCode(wrong, 30_000), wrong.stderr).toBe(2);
    const lines = errorLines(wrong);
    expect(lines, JSON.stringify(lines)).toHaveLength(1);
    expect(lines[0]!.event).toBe('refused');
    expect(lines[0]!['keyId']).toBe(idOf(wrongKey));
    expect(lines[0]!['clusterKeyId']).toBe(idOf(clusterKey));
    expect(lines[0]!.msg).toContain('--oplog-key-file');
    expect(wrong.stderr).toContain(`key id ${idOf(clusterKey)}`);
    expect(wrong.logs.some((l) => l.event === 'state' && l.state === 'primary')).toBe(false);
  });
});
