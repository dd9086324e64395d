// A stream that lost its tail (as after a power loss) while the object store kept a newer
// checkpoint: three node processes over real nats-server and etcd must fail closed and say why,
// and `understudy checkpoint accept-loss` makes them serve again from the newest checkpoint.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { NatsCheckpointStore } from '../../src/adapters/nats/natsCheckpointStore.ts';
import { opLogStreamName, opLogSubject } from '../../src/adapters/nats/stream.ts';
import { ApiError } from '../../src/api/wire.ts';
import { type Placement, type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import type { CheckpointInfo } from '../../src/ports/checkpointStore.ts';
import { runCli } from '../harness/cli.ts';
import { expectEqualDigests, startE2eCluster } from '../harness/e2eCluster.ts';

const CLUSTER = 'tail';
const TTL = 2000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function put(
  client: UnderstudyClient,
  acked: Map<string, Placement>,
  from: number,
  to: number,
) {
  for (let i = from; i < to; i++) acked.set(`key-${i}`, await client.putStart(`key-${i}`, 4096, 2));
}

async function expectAllPresent(client: UnderstudyClient, acked: Map<string, Placement>) {
  for (const [key, placement] of acked) {
    const record = await client.get(key);
    expect(record.replicas.map((r) => [r.segmentId, r.offset])).toEqual(
      placement.replicas.map((r) => [r.segmentId, r.offset]),
    );
  }
}

/**
 * What a power loss does to a stream: every message after stream seq `cut` is gone and the
 * stream's last sequence is `cut` again. nats-server 2.9 cannot create a stream at a given first
 * sequence, so the stream is recreated, filled up to its old first message, given back its
 * messages up to `cut`, and purged below its old first message.
 */
async function loseTail(nc: NatsConnection, cut: number): Promise<void> {
  const name = opLogStreamName(CLUSTER);
  const jsm = await jetstreamManager(nc);
  const { config, state } = await jsm.streams.info(name);
  const kept = [];
  for (let seq = state.first_seq; seq <= cut; seq++) {
    const message = await jsm.streams.getMessage(name, { seq });
    if (message === null) throw new Error(`stream message ${seq} is missing`);
    kept.push(message);
  }
  await jsm.streams.delete(name);
  await jsm.streams.add(config);
  const js = jetstream(nc);
  const subject = opLogSubject(CLUSTER);
  for (let seq = 1; seq < state.first_seq; seq++) await js.publish(subject, new Uint8Array(0));
  for (const message of kept) {
    // The writer's fencing headers were for the old stream; its id and signature stay.
    const copied = headers();
    for (const key of message.header.keys())
      if (!key.startsWith('Nats-Expected')) copied.set(key, message.header.get(key));
    await js.publish(subject, message.data, { headers: copied });
  }
  await jsm.streams.purge(name, { seq: state.first_seq });
  const after = (await jsm.streams.info(name)).state;
  expect([after.first_seq, after.last_seq]).toEqual([state.first_seq, cut]);
}

const CHECKPOINT_NEVER = [
  '--checkpoint-interval-entries',
  '100000000',
  '--checkpoint-interval',
  '1000m',
];

describe(
  'a stream that lost its tail (three node processes, real etcd and nats-server)',
  { timeout: 240_000 },
  () => {
    it('every node fails closed and says why; accept-loss makes the cluster serve every key of the newest checkpoint', async () => {
      const { fleet, client, nc, nats, etcd } = await startE2eCluster(cleanups, {
        cluster: CLUSTER,
        leaseTtlMs: TTL,
        extraArgs: CHECKPOINT_NEVER,
        deadlineMs: 60_000,
        maxBackoffMs: 200,
        segments: [
          ['s1-seg', 's1'],
          ['s2-seg', 's2'],
        ],
      });
      const etcdArgs = ['--cluster', CLUSTER, '--etcd', etcd.endpoint];
      const acked = new Map<string, Placement>();
      await put(client, acked, 0, 20);
      expect((await runCli(['checkpoint', 'create', ...etcdArgs])).code).toBe(0);
      await put(client, acked, 20, 60);
      expect((await runCli(['checkpoint', 'create', ...etcdArgs])).code).toBe(0);
      const store = await NatsCheckpointStore.open({ nc, cluster: CLUSTER });
      const [newest, older] = (await store.list()) as [CheckpointInfo, CheckpointInfo];
      expect(newest.appliedSeq).toBeGreaterThan(older.appliedSeq);

      await Promise.all(fleet.nodes.map((n) => n.kill()));
      // The stream keeps the older checkpoint's message and a few after it, not the newest's.
      const cut = older.lastStreamSeq + 3;
      expect(cut).toBeLessThan(newest.lastStreamSeq);
      await loseTail(nc, cut);
      await new Promise((r) => setTimeout(r, TTL + 500)); // the dead primary's lease runs out
      await Promise.all(fleet.nodes.map((n) => n.restart()));

      for (const node of fleet.nodes) {
        const line = await node.waitForLog(
          (l) => l.event === 'failClosed' && l['streamTailLost'] === true,
          30_000,
        );
        expect(line).toMatchObject({
          checkpoint: newest.name,
          checkpointSeq: newest.appliedSeq,
          streamLastStreamSeq: cut,
        });
        expect(String(line['reason'])).toContain(`checkpoint ${newest.name} holds entries to seq`);
        const ready = await fetch(`${node.url}/readyz`);
        expect(ready.status).toBe(503);
      }
      // Nobody campaigns: no primary after several TTLs, and a write is refused as retryable.
      await new Promise((r) => setTimeout(r, 3 * TTL));
      for (const node of fleet.nodes) {
        const status = await node.status();
        expect(status.role).toBe('starting');
        expect(status.failClosed).toMatch(/acknowledged entries were lost/);
      }
      const impatient = await createClient({
        servers: nats.url,
        cluster: CLUSTER,
        requestTimeoutMs: 300,
        deadlineMs: 2000,
      });
      cleanups.push(() => impatient.close());
      const refused = await impatient.putStart('after-loss', 4096, 2).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).retryable).toBe(true);
      const status = await runCli(['status', ...etcdArgs]);
      expect(status.code).toBe(3);
      expect(status.stdout).toMatch(/n1 failed closed: .*acknowledged entries were lost/);
      expect(status.stdout).toContain(`accept-loss --seq ${newest.appliedSeq}`);

      const natsArgs = ['--nats', nats.url];
      // Only the newest checkpoint can be accepted.
      const wrong = await runCli([
        'checkpoint',
        'accept-loss',
        '--seq',
        String(older.appliedSeq),
        ...etcdArgs,
        ...natsArgs,
      ]);
      expect(wrong.code, wrong.stderr).toBe(2);
      expect(wrong.stderr).toContain(`the newest checkpoint is at seq ${newest.appliedSeq}`);
      const accepted = await runCli([
        'checkpoint',
        'accept-loss',
        '--seq',
        String(newest.appliedSeq),
        ...etcdArgs,
        ...natsArgs,
      ]);
      expect(accepted.code, accepted.stderr).toBe(0);
      expect(accepted.stdout).toContain(newest.name);

      await fleet.primary(60_000);
      await expectAllPresent(client, acked);
      await put(client, acked, 60, 70);
      await expectAllPresent(client, acked);
      await expectEqualDigests(fleet);
      for (const node of fleet.nodes) expect((await node.status()).failClosed).toBeUndefined();
    });
  },
);
