import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { expectEqualDigests, startE2eCluster, type E2eCluster } from '../harness/e2eCluster.ts';
import { expectAcksInLog, expectLinearHistory } from '../harness/logChecks.ts';
import type { NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import { Workload } from '../../src/tools/localCluster/workload.ts';

const CLUSTER = 'e2e';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

function startCluster(leaseTtlMs: number): Promise<E2eCluster> {
  const segments = ['s1', 's2', 's3'].flatMap((node) =>
    [0, 1].map((n) => [`${node}-seg${n}`, node] as const),
  );
  return startE2eCluster(cleanups, {
    cluster: CLUSTER,
    leaseTtlMs,
    deadlineMs: 30_000,
    maxBackoffMs: 100,
    segments,
  });
}

async function fenceSeqOf(node: NodeHandle, from: number): Promise<number> {
  const line = await node.waitForLog((l) => l.event === 'fenceWritten', 30_000, from);
  return line['seq'] as number;
}

describe('failover end to end (three node processes, real etcd and nats-server)', () => {
  it('kill -9 of the primary under load: a standby serves within TTL + 1 s, no acknowledged write is lost', async () => {
    const ttl = 2000;
    const { fleet, client, nats } = await startCluster(ttl);
    const primary = await fleet.primary(30_000);
    const load = new Workload(client, { concurrency: 8 }).start();
    await load.until(() => load.acks.length >= 300, 30_000, '300 acks');

    const others = fleet.nodes.filter((n) => n !== primary);
    const logMarks = others.map((n) => n.logs.length);
    const killedAt = Date.now();
    await primary.kill();
    const next = await fleet.primary(30_000, primary);
    const fenceSeq = await fenceSeqOf(next, logMarks[others.indexOf(next)] ?? 0);
    await load.until(
      () => load.firstAckAfter(killedAt, fenceSeq) !== undefined,
      30_000,
      'an ack after failover',
    );
    const rtoMs = load.firstAckAfter(killedAt, fenceSeq)!.ackedAt - killedAt;
    console.log(`kill -9 failover: RTO ${rtoMs} ms at the client (TTL ${ttl} ms)`);
    await load.until(() => load.acks.length >= 600, 30_000, 'more acks');
    await load.stop();

    expect(rtoMs).toBeLessThan(ttl + 1000);
    const log = await readLoggedEvents(nats.url, CLUSTER);
    expectLinearHistory(log);
    expectAcksInLog(load.acks, log);
    for (const ack of load.acks.filter((a) => a.op === 'putEnd')) {
      const record = await client.get(ack.key);
      expect(record.replicas.every((r) => r.status === 'complete')).toBe(true);
    }
    await expectEqualDigests(fleet, next);
  });

  it('SIGSTOP of the primary for 2 x TTL: it acknowledges nothing after the new fence and rejoins as a standby', async () => {
    const ttl = 2000;
    const { fleet, client, nats } = await startCluster(ttl);
    const old = await fleet.primary(30_000);
    const load = new Workload(client, { concurrency: 8 }).start();
    await load.until(() => load.acks.length >= 200, 30_000, '200 acks');

    const mark = old.logs.length;
    old.pause();
    const next = await fleet.primary(30_000, old);
    await new Promise((r) => setTimeout(r, Math.max(0, 2 * ttl)));
    old.resume();
    await old.waitForLog((l) => l.event === 'state' && l.state === 'standby', 30_000, mark);
    await load.until(() => load.acks.length >= 600, 30_000, 'more acks');
    await load.stop();

    const log = await readLoggedEvents(nats.url, CLUSTER);
    expectLinearHistory(log);
    expectAcksInLog(load.acks, log);
    const status = await old.status();
    expect(status.role).toBe('standby');
    expect(status.fences).toBeGreaterThanOrEqual(1);
    await expectEqualDigests(fleet, next);
  });

  it('a restarted standby catches up and its digest equals the primary', async () => {
    const { fleet, client } = await startCluster(2000);
    const primary = await fleet.primary(30_000);
    const standby = fleet.nodes.find((n) => n !== primary)!;
    const load = new Workload(client, { concurrency: 4 }).start();
    await load.until(() => load.acks.length >= 100, 30_000, '100 acks');
    await standby.kill();
    const before = load.acks.length;
    await load.until(() => load.acks.length >= before + 200, 30_000, 'acks while it is down');
    await standby.restart();
    await load.until(() => load.acks.length >= before + 400, 30_000, 'acks after restart');
    await load.stop();
    await expectEqualDigests(fleet, primary);
    expect((await standby.status()).role).toBe('standby');
  });

  it('SIGTERM of the primary: a standby takes over without waiting for the TTL', async () => {
    const ttl = 5000;
    const { fleet, client, nats } = await startCluster(ttl);
    const old = await fleet.primary(30_000);
    const load = new Workload(client, { concurrency: 4 }).start();
    await load.until(() => load.acks.length >= 100, 30_000, '100 acks');
    const others = fleet.nodes.filter((n) => n !== old);
    const marks = others.map((n) => n.logs.length);
    const termAt = Date.now();
    const exit = old.terminate();
    const next = await fleet.primary(30_000, old);
    const fenceSeq = await fenceSeqOf(next, marks[others.indexOf(next)] ?? 0);
    await load.until(() => load.firstAckAfter(termAt, fenceSeq) !== undefined, 30_000, 'an ack');
    const switchoverMs = load.firstAckAfter(termAt, fenceSeq)!.ackedAt - termAt;
    console.log(`SIGTERM switchover: ${switchoverMs} ms at the client (TTL ${ttl} ms)`);
    expect(await exit).toBe(0);
    await load.stop();
    expect(switchoverMs).toBeLessThan(ttl);
    const log = await readLoggedEvents(nats.url, CLUSTER);
    expectLinearHistory(log);
    expectAcksInLog(load.acks, log);
  });

  it('bad requests get typed errors, change nothing, and the node keeps serving', async () => {
    const { fleet, client, nats } = await startCluster(2000);
    const primary = await fleet.primary(30_000);
    await client.putStart('good', 1024, 2);
    const before = await primary.status(true);
    const nc = await connect({ servers: nats.url });
    cleanups.push(() => nc.close());
    const ask = async (
      op: string,
      body: string | Uint8Array,
    ): Promise<{ ok: boolean; error?: { code: string; field?: string } }> => {
      const reply = await nc.request(`understudy.${CLUSTER}.api.${op}`, body, { timeout: 5000 });
      return reply.json();
    };
    const cases: Array<[string, string | Uint8Array, string]> = [
      ['putStart', JSON.stringify({ key: 42, size: 1, replicaNum: 1 }), 'BAD_REQUEST'],
      ['putStart', JSON.stringify({ key: 'k'.repeat(5000), size: 1, replicaNum: 1 }), ''],
      ['putStart', JSON.stringify({ key: 'neg', size: -1, replicaNum: 1 }), ''],
      ['putStart', new Uint8Array([0xff, 0x00, 0x13, 0x37]), 'BAD_REQUEST'],
      ['frobnicate', JSON.stringify({ key: 'x' }), 'BAD_REQUEST'],
      ['putEnd', '{"key":', 'BAD_REQUEST'],
    ];
    for (const [op, body, code] of cases) {
      const answer = await ask(op, body);
      expect(answer.ok, `${op} ${String(body).slice(0, 40)}`).toBe(false);
      if (code !== '') expect(answer.error?.code).toBe(code);
      else expect(['BAD_REQUEST', 'INVALID_ARGUMENT']).toContain(answer.error?.code);
    }
    const after = await primary.status(true);
    expect(after.appliedSeq).toBe(before.appliedSeq);
    expect(after.digest).toBe(before.digest);
    const placement = await client.putStart('still-serving', 1024, 2);
    expect(placement.replicas).toHaveLength(2);
  });
});
