// OpLog integrity end to end: three node processes over real nats-server and etcd, under
// load, while an outsider publishes 64 bytes of garbage to the OpLog subject (nothing in a
// local cluster stops it; deploy/nats/auth.conf does in the compose set-up). Regression test
// of: one undecodable message fenced the primary, sent every standby into full sync in a loop
// and left the cluster without a primary for good.
import { jetstream } from '@nats-io/jetstream';
import { afterEach, describe, expect, it } from 'vitest';
import { opLogSubject } from '../../src/adapters/nats/natsOpLog.ts';
import { readLoggedEvents } from '../../src/localCluster/readLoggedEvents.ts';
import { Workload } from '../../src/localCluster/workload.ts';
import { expectEqualDigests, startE2eCluster } from '../harness/e2eCluster.ts';
import { expectAcksInLog, expectLinearHistory } from '../harness/logChecks.ts';

const CLUSTER = 'integrity';
const TTL = 2000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

describe('OpLog integrity end to end (three node processes, real etcd and nats-server)', () => {
  it('garbage published to the OpLog subject under load: every standby passes over it and says so, a primary serves within TTL + 1 s, no acknowledged write is lost, digests equal', async () => {
    const { fleet, client, nats, nc } = await startE2eCluster(cleanups, {
      cluster: CLUSTER,
      leaseTtlMs: TTL,
      deadlineMs: 30_000,
      maxBackoffMs: 100,
      segments: [
        ['s1-seg', 's1'],
        ['s2-seg', 's2'],
      ],
    });
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
    // Every acknowledged write reads back with the placement it was acknowledged with.
    for (const a of load.acks.filter((a) => a.op === 'putStart')) {
      const record = await client.get(a.key);
      expect(
        record.replicas.map((r) => [r.segmentId, r.offset]),
        a.key,
      ).toEqual(a.replicas?.map((r) => [r.segmentId, r.offset]));
    }
  });
});
