// Durable restarts end to end: three node processes over real nats-server and etcd, killed all
// at once (kill -9) after the stream was trimmed below older writes, or purged, with and without
// checkpoints, with a corrupt newest checkpoint.
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { NatsCheckpointStore } from '../../src/adapters/nats/natsCheckpointStore.ts';
import { opLogStreamName } from '../../src/adapters/nats/stream.ts';
import type { Placement, UnderstudyClient } from '../../src/client/client.ts';
import { runCli } from '../harness/cli.ts';
import { expectEqualDigests, startE2eCluster, type E2eCluster } from '../harness/e2eCluster.ts';
import type { NodeFleet } from '../../src/tools/localCluster/nodeFleet.ts';

const CLUSTER = 'durable';
const TTL = 2000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

function startCluster(extraArgs: readonly string[]): Promise<E2eCluster> {
  return startE2eCluster(cleanups, {
    cluster: CLUSTER,
    leaseTtlMs: TTL,
    extraArgs,
    deadlineMs: 60_000,
    maxBackoffMs: 200,
    segments: [
      ['s1-seg', 's1'],
      ['s2-seg', 's2'],
    ],
  });
}

async function put(
  client: UnderstudyClient,
  acked: Map<string, Placement>,
  from: number,
  to: number,
) {
  for (let i = from; i < to; i++) acked.set(`key-${i}`, await client.putStart(`key-${i}`, 4096, 2));
}

async function streamState(
  nc: NatsConnection,
): Promise<{ first: number; last: number; messages: number }> {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(opLogStreamName(CLUSTER));
  return { first: state.first_seq, last: state.last_seq, messages: state.messages };
}

async function restartAll(fleet: NodeFleet): Promise<void> {
  await Promise.all(fleet.nodes.map((n) => n.kill()));
  await new Promise((r) => setTimeout(r, TTL + 500)); // the dead primary's lease runs out
  await Promise.all(fleet.nodes.map((n) => n.restart()));
}

async function expectAllPresent(client: UnderstudyClient, acked: Map<string, Placement>) {
  for (const [key, placement] of acked) {
    const record = await client.get(key);
    expect(record.replicas.map((r) => [r.segmentId, r.offset])).toEqual(
      placement.replicas.map((r) => [r.segmentId, r.offset]),
    );
  }
}

const CHECKPOINT_OFTEN = ['--checkpoint-interval-entries', '40', '--checkpoint-keep', '2'];
const CHECKPOINT_NEVER = [
  '--checkpoint-interval-entries',
  '100000000',
  '--checkpoint-interval',
  '1000m',
];

describe(
  'durable restarts end to end (three node processes, real etcd and nats-server)',
  { timeout: 240_000 },
  () => {
    it('whole-cluster kill -9 after the stream was trimmed below older writes: every acknowledged write is there, digests equal', async () => {
      const { fleet, client, nc } = await startCluster(CHECKPOINT_OFTEN);
      const acked = new Map<string, Placement>();
      for (let round = 0; (await streamState(nc)).first <= 1; round++) {
        if (round > 30) throw new Error('the stream was never trimmed');
        await put(client, acked, round * 30, round * 30 + 30);
        await new Promise((r) => setTimeout(r, 1000));
      }
      await put(client, acked, 10_000, 10_020); // a tail after the newest checkpoint
      await restartAll(fleet);
      await fleet.primary(60_000);
      await expectAllPresent(client, acked);
      await expectEqualDigests(fleet);
      const loaded = await Promise.all(
        fleet.nodes.map((n) => n.waitForLog((l) => l.event === 'checkpointLoaded', 30_000)),
      );
      expect(loaded.every((l) => String(l['checkpoint']).startsWith('cp.'))).toBe(true);
    });

    it('the stream purged entirely with a checkpoint of its end: the cluster cold-starts and writes on', async () => {
      const { fleet, client, nc, etcd } = await startCluster(CHECKPOINT_NEVER);
      const acked = new Map<string, Placement>();
      await put(client, acked, 0, 30);
      const created = await runCli([
        'checkpoint',
        'create',
        '--cluster',
        CLUSTER,
        '--etcd',
        etcd.endpoint,
        '--json',
      ]);
      expect(created.code, created.stderr).toBe(0);
      await Promise.all(fleet.nodes.map((n) => n.kill()));
      const jsm = await jetstreamManager(nc);
      await jsm.streams.purge(opLogStreamName(CLUSTER));
      expect((await streamState(nc)).messages).toBe(0);
      await new Promise((r) => setTimeout(r, TTL + 500));
      await Promise.all(fleet.nodes.map((n) => n.restart()));
      await fleet.primary(60_000);
      await expectAllPresent(client, acked);
      await put(client, acked, 30, 35);
      await expectAllPresent(client, acked);
      await expectEqualDigests(fleet);
    });

    it('no checkpoint and a trimmed stream: every node fails closed and says why (log, /readyz, status)', async () => {
      const { fleet, client, nc, etcd } = await startCluster(CHECKPOINT_NEVER);
      await put(client, new Map(), 0, 20);
      await Promise.all(fleet.nodes.map((n) => n.kill()));
      const jsm = await jetstreamManager(nc);
      await jsm.streams.purge(opLogStreamName(CLUSTER), { keep: 3 });
      await new Promise((r) => setTimeout(r, TTL + 500));
      await Promise.all(fleet.nodes.map((n) => n.restart()));
      for (const node of fleet.nodes) {
        const line = await node.waitForLog((l) => l.event === 'failClosed', 60_000);
        expect(String(line['reason'])).toMatch(
          /stream starts at entry \d+ and there is no checkpoint/,
        );
        const ready = await fetch(`${node.url}/readyz`);
        expect(ready.status).toBe(503);
        expect(((await ready.json()) as { reason: string }).reason).toMatch(/^failed closed: /);
      }
      await new Promise((r) => setTimeout(r, 3000));
      for (const node of fleet.nodes) expect((await node.status()).role).toBe('starting');
      const status = await runCli(['status', '--cluster', CLUSTER, '--etcd', etcd.endpoint]);
      expect(status.stdout).toMatch(/n1\s+\S*failed closed/);
      expect(status.stdout).toMatch(/n1 failed closed: the stream starts at entry/);
    });

    it('a corrupt newest checkpoint: the older one is used and the corruption reported', async () => {
      const { fleet, client, nc, nats, etcd } = await startCluster(CHECKPOINT_NEVER);
      const acked = new Map<string, Placement>();
      const etcdArgs = ['--cluster', CLUSTER, '--etcd', etcd.endpoint];
      await put(client, acked, 0, 20);
      expect((await runCli(['checkpoint', 'create', ...etcdArgs])).code).toBe(0);
      await put(client, acked, 20, 40);
      expect((await runCli(['checkpoint', 'create', ...etcdArgs])).code).toBe(0);
      await Promise.all(fleet.nodes.map((n) => n.kill()));
      // Rewrite the newest with one byte changed (metadata unchanged), as a disk fault would.
      const store = await NatsCheckpointStore.open({ nc, cluster: CLUSTER });
      const [newest, older] = await store.list();
      const pieces: Uint8Array[] = [];
      for await (const piece of store.read(newest!.name)) pieces.push(piece.slice());
      const first = pieces[0]!;
      first[first.length >> 1] = (first[first.length >> 1] ?? 0) ^ 0x55;
      await store.remove(newest!.name);
      const { name: _name, createdAt: _createdAt, bytes: _bytes, ...description } = newest!;
      await (await store.write(pieces)).publish(description);
      const verify = await runCli([
        'checkpoint',
        'verify',
        '--cluster',
        CLUSTER,
        '--nats',
        nats.url,
      ]);
      expect(verify.code).toBe(3);
      expect(verify.stdout).toMatch(
        new RegExp(`${newest!.name.replace(/\./g, '\\.')}\\s+\\d+\\s+CORRUPT`),
      );
      await new Promise((r) => setTimeout(r, TTL + 500));
      await Promise.all(fleet.nodes.map((n) => n.restart()));
      await fleet.primary(60_000);
      for (const node of fleet.nodes) {
        const corrupt = await node.waitForLog((l) => l.event === 'checkpointCorrupt', 30_000);
        expect(corrupt['checkpoint']).toBe(newest!.name);
        const loaded = await node.waitForLog((l) => l.event === 'checkpointLoaded', 30_000);
        expect(loaded['checkpoint']).toBe(older!.name);
      }
      await expectAllPresent(client, acked);
      await expectEqualDigests(fleet);
    });
  },
);
