// OpLog integrity end to end: three node processes over real nats-server and etcd, under
// load, while an outsider publishes 64 bytes of garbage to the OpLog subject (nothing in a
// local cluster stops it; deploy/nats/auth.conf does in the compose set-up). Regression test
// of: one undecodable message fenced the primary, sent every standby into full sync in a loop
// and left the cluster without a primary for good.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { opLogSubject } from '../../src/adapters/nats/stream.ts';
import { oplogSigningKey } from '../../src/config/credentials.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import { Workload, type AckRecord } from '../../src/tools/localCluster/workload.ts';
import type { UnderstudyClient } from '../../src/client/client.ts';
import { encodeBatch } from '../../src/domain/log/codec.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../src/domain/model/types.ts';
import { runCli as cli } from '../harness/cli.ts';
import { expectEqualDigests, startE2eCluster } from '../harness/e2eCluster.ts';
import { expectAcksInLog, expectLinearHistory } from '../harness/logChecks.ts';

const CLUSTER = 'integrity';
const TTL = 2000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** Three nodes under TTL 2 s, two storage segments. */
function startCluster(extraArgs: readonly string[] = []): ReturnType<typeof startE2eCluster> {
  return startE2eCluster(cleanups, {
    extraArgs,
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

/** 100 acknowledged writes under load, then quiet; `victim` is a key they put. */
async function writeThenStop(
  client: UnderstudyClient,
): Promise<{ load: Workload; victim: string }> {
  const load = new Workload(client, { concurrency: 4 }).start();
  await load.until(() => load.acks.length >= 100, 30_000, '100 acks');
  await load.stop();
  return { load, victim: load.acks.find((a) => a.op === 'putStart')!.key };
}

/** Every acknowledged put reads back with the placement it was acknowledged with. */
async function expectAcksReadBack(
  client: UnderstudyClient,
  acks: readonly AckRecord[],
): Promise<void> {
  for (const a of acks.filter((a) => a.op === 'putStart')) {
    const record = await client.get(a.key);
    expect(
      record.replicas.map((r) => [r.segmentId, r.offset]),
      a.key,
    ).toEqual(a.replicas?.map((r) => [r.segmentId, r.offset]));
  }
}

type Fleet = Awaited<ReturnType<typeof startE2eCluster>>['fleet'];

/**
 * Publishes `forge(next seq, epoch)` (one entry, or several in one message) as an outsider once
 * every node has the same log.
 */
async function publishForged(
  fleet: Fleet,
  nc: NatsConnection,
  forge: (seq: number, epoch: number) => Omit<LoggedEvent, 'ts'> | Omit<LoggedEvent, 'ts'>[],
): Promise<{ streamSeq: number; publishedAt: number; marks: number[] }> {
  const primary = await fleet.primary(30_000);
  const { appliedSeq, epoch } = await primary.status();
  for (const node of fleet.nodes) {
    await node.waitForStatus((s) => s.appliedSeq >= appliedSeq, 30_000);
  }
  const marks = fleet.nodes.map((n) => n.logs.length);
  const entries = [forge(appliedSeq + 1, epoch)]
    .flat()
    .map((e) => toEntry({ ...e, ts: Date.now() }));
  const publishedAt = Date.now();
  const ack = await jetstream(nc).publish(opLogSubject(CLUSTER), encodeBatch(entries));
  return { streamSeq: ack.seq, publishedAt, marks };
}

/** A write is acknowledged within TTL + 1 s of `publishedAt` (the forged message fenced the primary). */
async function expectServed(
  client: UnderstudyClient,
  publishedAt: number,
  key: string,
): Promise<void> {
  await client.putStart(key, 100, 1);
  const servedMs = Date.now() - publishedAt;
  console.log(`${key}: acknowledged ${servedMs} ms after the forged entry (TTL ${TTL} ms)`);
  expect(servedMs).toBeLessThan(TTL + 1000);
}

/** Every node that followed the log when it came warned `event` for that message. */
async function expectReported(
  fleet: Fleet,
  forged: { streamSeq: number; marks: number[] },
  followers: readonly Fleet['nodes'][number][],
  event: 'foreignEntrySkipped' | 'logMessageSkipped',
): Promise<void> {
  for (const node of followers) {
    const i = fleet.nodes.indexOf(node);
    const line = await node.waitForLog(
      (l) => l.event === event && l['streamSeq'] === forged.streamSeq,
      30_000,
      forged.marks[i] ?? 0,
    );
    expect(line['level']).toBe(40); // pino's warn
  }
}

describe('OpLog integrity end to end (three node processes, real etcd and nats-server)', () => {
  it('garbage published to the OpLog subject under load: every standby passes over it and says so, a primary serves within TTL + 1 s, no acknowledged write is lost, digests equal', async () => {
    const { fleet, client, nats, nc } = await startCluster();
    const load = new Workload(client, { concurrency: 4 }).start();
    await load.until(() => load.acks.length >= 200, 30_000, '200 acks');

    const marks = fleet.nodes.map((n) => n.logs.length);
    // The primary writes the log and does not read it back: the standbys are the ones to see it.
    const primaryBefore = await fleet.primary(30_000);
    const publishedAt = Date.now();
    const ack = await jetstream(nc).publish(opLogSubject(CLUSTER), new Uint8Array(64).fill(0x5a));
    // The primary's next append expected the slot the garbage took: it is fenced, and a node
    // (often the same one) is elected again and appends a new EPOCH fence.
    const fence = await Promise.any(
      fleet.nodes.map((n, i) =>
        n.waitForLog((l) => l.event === 'fenceWritten', 30_000, marks[i] ?? 0),
      ),
    );
    const fenceSeq = fence['seq'] as number;
    await load.until(
      () => load.firstAckAfter(publishedAt, fenceSeq) !== undefined,
      30_000,
      'an ack after the garbage',
    );
    const servedMs = load.firstAckAfter(publishedAt, fenceSeq)!.ackedAt - publishedAt;
    console.log(
      `garbage at stream seq ${ack.seq}: first ack after it ${servedMs} ms (TTL ${TTL} ms)`,
    );
    expect(servedMs).toBeLessThan(TTL + 1000);
    const before = load.acks.length;
    await load.until(() => load.acks.length >= before + 200, 30_000, 'acks after the garbage');
    await load.stop();

    for (const [i, node] of fleet.nodes.entries()) {
      if (node === primaryBefore) {
        expect((await node.status()).skipped).toBeLessThanOrEqual(1);
        continue;
      }
      const line = await node.waitForLog(
        (l) => l.event === 'logMessageSkipped' && l['streamSeq'] === ack.seq,
        30_000,
        marks[i] ?? 0,
      );
      expect(line['level']).toBe(40); // pino's warn
      const status = await node.status();
      expect(status.skipped).toBe(1);
      expect(status.role).not.toBe('syncing');
    }
    const primary = await fleet.primary(30_000);
    await expectEqualDigests(fleet, primary);
    const log = await readLoggedEvents(nats.url, CLUSTER);
    expectLinearHistory(log);
    expectAcksInLog(load.acks, log);
    await expectAcksReadBack(client, load.acks);
  });

  it('a forged EPOCH (epoch 1e9) and a REMOVE of an acknowledged key stamped with a foreign epoch, published as entry seq + 1: every node passes over each and says so, a primary serves within TTL + 1 s of each, nothing is lost, digests equal', async () => {
    const { fleet, client, nats, nc, etcd } = await startCluster();
    const { load, victim } = await writeThenStop(client);

    let primary = await fleet.primary(30_000);
    let followers = fleet.nodes.filter((n) => n !== primary);
    const fence = await publishForged(fleet, nc, (seq) => ({
      seq,
      epoch: 1e9,
      event: { op: 'EPOCH', epoch: 1e9, nodeId: followers[0]!.id },
    }));
    await expectServed(client, fence.publishedAt, 'after-fence');
    await expectReported(fleet, fence, followers, 'foreignEntrySkipped');

    primary = await fleet.primary(30_000);
    followers = fleet.nodes.filter((n) => n !== primary);
    const remove = await publishForged(fleet, nc, (seq, epoch) => ({
      seq,
      epoch: epoch + 1000,
      event: { op: 'REMOVE', key: victim },
    }));
    await expectServed(client, remove.publishedAt, 'after-remove');
    await expectReported(fleet, remove, followers, 'foreignEntrySkipped');

    const more = new Workload(client, { concurrency: 4, keyPrefix: 'more' }).start();
    await more.until(() => more.acks.length >= 100, 30_000, 'acks after the forgeries');
    await more.stop();

    for (const node of fleet.nodes) {
      const status = await node.status();
      expect(status.role, node.id).not.toBe('syncing');
      expect(status.foreign, node.id).toBeGreaterThanOrEqual(1);
      expect(status.foreign, node.id).toBeLessThanOrEqual(2);
      expect(status.epoch, node.id).toBeLessThan(1e9);
    }
    primary = await fleet.primary(30_000);
    await expectEqualDigests(fleet, primary);
    const foreign: number[] = [];
    const log = await readLoggedEvents(nats.url, CLUSTER, {
      etcd: [etcd.endpoint],
      onSkipped: (item) => {
        if (item.kind === 'foreign') foreign.push(item.error.streamSeq ?? 0);
      },
    });
    expect(foreign).toEqual([fence.streamSeq, remove.streamSeq]);
    expectLinearHistory(log);
    const acks = [...load.acks, ...more.acks];
    expectAcksInLog(acks, log);
    expect(await client.exists(victim)).toBe(true);
    // `understudy export` (the real CLI) stops at the first forged entry, naming it; with
    // --skip-bad it exports the log without them and says how many it skipped.
    const exportArgs = ['export', '--cluster', CLUSTER, '--nats', nats.url, '--out', '/dev/null'];
    const exported = await cli(exportArgs);
    expect(exported.code, exported.stderr).toBe(1);
    expect(exported.stderr).toContain(`stream message ${fence.streamSeq}): foreign entry`);
    const skipping = await cli([...exportArgs, '--skip-bad']);
    expect(skipping.code, skipping.stderr).toBe(0);
    expect(skipping.stderr).toContain(`${log.length} entries (seqs 1..${log.length})`);
    expect(skipping.stderr).toContain('2 foreign entries skipped');
    await expectAcksReadBack(client, acks);
  });

  it('forged EPOCH after etcd compaction (issue 25): with etcd compacted past the current epoch E, an EPOCH E+1 and a REMOVE of an acknowledged key stamped E+1, in one message: every node passes over both and says so, the key stays, digests equal', async () => {
    const { fleet, client, nats, nc, etcd } = await startCluster();
    const { load, victim } = await writeThenStop(client);
    const { epoch } = await (await fleet.primary(30_000)).status();
    // What an operator does (etcdctl compact): history up to now is gone, E + 1 included.
    const etcdClient = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => Promise.resolve(etcdClient.close()));
    await etcdClient.put('unrelated').value('1');
    await etcdClient.put('unrelated').value('2');
    const { header } = await etcdClient.get('unrelated').exec();
    expect(Number(header.revision)).toBeGreaterThan(epoch + 1);
    await etcdClient.kv.compact({ revision: header.revision, physical: true });

    let primary = await fleet.primary(30_000);
    const followers = fleet.nodes.filter((n) => n !== primary);
    const forged = await publishForged(fleet, nc, (seq, current) => {
      expect(current).toBe(epoch);
      return [
        {
          seq,
          epoch: epoch + 1,
          event: { op: 'EPOCH', epoch: epoch + 1, nodeId: followers[0]!.id },
        },
        { seq: seq + 1, epoch: epoch + 1, event: { op: 'REMOVE', key: victim } },
      ];
    });
    await expectServed(client, forged.publishedAt, 'after-compacted-forgery');
    // Served by a primary that drained the log, forged message included.
    expect(await client.exists(victim)).toBe(true);
    await expectReported(fleet, forged, followers, 'foreignEntrySkipped');
    for (const node of followers) {
      const i = fleet.nodes.indexOf(node);
      const skipped = node.logs
        .slice(forged.marks[i] ?? 0)
        .filter((l) => l.event === 'foreignEntrySkipped' && l['streamSeq'] === forged.streamSeq);
      expect(
        skipped.map((l) => l['op']),
        node.id,
      ).toEqual(['EPOCH', 'REMOVE']);
    }
    expect(await client.exists(victim)).toBe(true);

    primary = await fleet.primary(30_000);
    for (const node of fleet.nodes) {
      const status = await node.status();
      expect(status.role, node.id).not.toBe('syncing');
      expect(status.foreign, node.id).toBe(2);
      expect(
        node.logs.filter((l) => l.event === 'epochUnverified'),
        node.id,
      ).toEqual([]);
    }
    await expectEqualDigests(fleet, primary);
    const foreign: number[] = [];
    const log = await readLoggedEvents(nats.url, CLUSTER, {
      etcd: [etcd.endpoint],
      onSkipped: (item) => {
        if (item.kind === 'foreign') foreign.push(item.error.streamSeq ?? 0);
      },
    });
    expect(foreign).toEqual([forged.streamSeq, forged.streamSeq]);
    expectLinearHistory(log);
    expectAcksInLog(load.acks, log);
    await expectAcksReadBack(client, load.acks);
  });

  it("with an OpLog key, a REMOVE of an acknowledged key stamped with the current epoch (only a signature tells it from the primary's) is passed over by every follower: the key stays, digests equal", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-key-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const keyFile = join(dir, 'oplog.key');
    await writeFile(keyFile, 'a cluster key of this test, 32 B\n');
    const { fleet, client, nats, nc } = await startCluster(['--oplog-key-file', keyFile]);
    const { load, victim } = await writeThenStop(client);
    let primary = await fleet.primary(30_000);
    const followers = fleet.nodes.filter((n) => n !== primary);
    const remove = await publishForged(fleet, nc, (seq, epoch) => ({
      seq,
      epoch,
      event: { op: 'REMOVE', key: victim },
    }));
    await expectServed(client, remove.publishedAt, 'after-unsigned');
    await expectReported(fleet, remove, followers, 'logMessageSkipped');
    expect(await client.exists(victim)).toBe(true);
    for (const node of fleet.nodes) {
      const status = await node.status();
      expect(status.role, node.id).not.toBe('syncing');
      expect(status.skipped, node.id).toBeLessThanOrEqual(1);
    }
    primary = await fleet.primary(30_000);
    await expectEqualDigests(fleet, primary);
    const log = await readLoggedEvents(nats.url, CLUSTER, {
      signingKey: oplogSigningKey({ oplogKeyFile: keyFile })!,
    });
    expectLinearHistory(log);
    expectAcksInLog(load.acks, log);
    await expectAcksReadBack(client, load.acks);
    // `understudy export` with the key names the unsigned message; --skip-bad leaves it out.
    const exportArgs = ['export', '--cluster', CLUSTER, '--nats', nats.url, '--out', '/dev/null'];
    const exported = await cli([...exportArgs, '--oplog-key-file', keyFile]);
    expect(exported.code, exported.stderr).toBe(1);
    expect(exported.stderr).toContain(
      `stream message ${remove.streamSeq} (seq unreadable): stream message: signature: the batch is not signed`,
    );
    const skipping = await cli([...exportArgs, '--oplog-key-file', keyFile, '--skip-bad']);
    expect(skipping.code, skipping.stderr).toBe(0);
    expect(skipping.stderr).toContain(`${log.length} entries (seqs 1..${log.length})`);
    expect(skipping.stderr).toContain('1 corrupt messages skipped');
  });
});
