// A wall clock stepped hours ahead on real node processes (libfaketime; the monotonic clock
// untouched), under load. Idle sessions expire by logged time (the largest entry ts); were ts
// the wall reading, the first entry a node 2 h ahead stamps would sweep every session, and a
// client's retry of a write whose reply was lost would be applied again (OBJECT_EXISTS for its
// own putStart). Here: a standby 2 h ahead promotes after kill -9 of the primary, then that
// primary's wall clock jumps 2 h more; each time a retry of an applied putStart gets its
// original answer, and no request is in the log twice.
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeJson } from '../../src/api/wire.ts';
import { createNatsApiClientTransport } from '../../src/adapters/nats/natsApiTransport.ts';
import { createClient } from '../../src/client/nats.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import { Workload } from '../../src/tools/localCluster/workload.ts';
import { startE2eCluster } from '../harness/e2eCluster.ts';
import { FakeWallClocks, libfaketimeMissing } from '../harness/faketime.ts';
import { expectAcksInLog, expectLinearHistory } from '../harness/logChecks.ts';
import { losingReplies } from '../harness/lostReply.ts';

const CLUSTER = 'e2eclock';
const TTL_MS = 2000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

const missing = libfaketimeMissing();
if (missing !== undefined) console.warn(`wallClockJump.e2e: skipped: ${missing}`);

describe.skipIf(missing !== undefined)(
  'wall-clock jumps end to end (node processes under libfaketime, real etcd and nats-server)',
  () => {
    it('a standby 2 h ahead promotes after kill -9, then its wall clock jumps 2 h more: retries of applied putStarts get their original answers', async () => {
      const clocks = new FakeWallClocks();
      cleanups.push(() => Promise.resolve(clocks[Symbol.dispose]()));
      const { fleet, client, nats } = await startE2eCluster(cleanups, {
        cluster: CLUSTER,
        leaseTtlMs: TTL_MS,
        deadlineMs: 60_000,
        maxBackoffMs: 100,
        segments: [
          ['s1-seg0', 's1'],
          ['s2-seg0', 's2'],
          ['s3-seg0', 's3'],
        ],
        nodeEnv: (id) => clocks.env(id),
      });
      // The client whose replies get lost: one request at a time, as the wire sends it.
      const nc = await connect({ servers: nats.url });
      const transport = losingReplies(createNatsApiClientTransport({ nc, cluster: CLUSTER }));
      const retrying = await createClient({
        cluster: CLUSTER,
        transport,
        coalesce: false,
        requestTimeoutMs: 500,
        deadlineMs: 60_000,
        backoff: { initialMs: 10, maxMs: 100 },
      });
      cleanups.push(async () => {
        await retrying.close();
        await transport.close();
        await nc.close();
      });
      await retrying.putStart('before', 4096, 2);
      const load = new Workload(client, { concurrency: 4, keyPrefix: 'load' }).start();
      cleanups.push(() => load.stop());
      await load.until(() => load.acks.length >= 100, 30_000, '100 acks');

      // 1. The standbys' wall clocks are 2 h ahead; a putStart is applied, its reply lost, and
      //    the primary is killed: the retry reaches a new primary 2 h ahead.
      const first = await fleet.primary(30_000);
      for (const node of fleet.nodes.filter((n) => n !== first)) clocks.set(node.id, '+2h');
      await new Promise((r) => setTimeout(r, 200));
      const lost1 = transport.loseNext();
      const put1 = retrying.putStart('lost-1', 4096, 2);
      const original1 = decodeJson(await lost1.served) as { ok: boolean; result: unknown };
      expect(original1.ok).toBe(true);
      await first.kill();
      const next = await fleet.primary(30_000, first);
      const acked = load.acks.length;
      await load.until(() => load.acks.length >= acked + 50, 30_000, '50 acks after the failover');
      lost1.release();
      expect(await put1).toEqual(original1.result);

      // 2. The new primary's wall clock jumps 2 h more while another reply is lost.
      const lost2 = transport.loseNext();
      const put2 = retrying.putStart('lost-2', 4096, 2);
      const original2 = decodeJson(await lost2.served) as { ok: boolean; result: unknown };
      expect(original2.ok).toBe(true);
      clocks.set(next.id, '+4h');
      const acked2 = load.acks.length;
      await load.until(() => load.acks.length >= acked2 + 50, 30_000, '50 acks after the jump');
      lost2.release();
      expect(await put2).toEqual(original2.result);
      await load.stop();

      // The load's own retries were never answered OBJECT_EXISTS, and the log holds every
      // request once.
      expect(load.failures).toEqual([]);
      const log = await readLoggedEvents(nats.url, CLUSTER);
      expectLinearHistory(log);
      expectAcksInLog(load.acks, log);
      const seen = new Map<string, number>();
      const twice: string[] = [];
      for (const logged of log) {
        if (logged.origin === undefined) continue;
        const request = `${logged.origin.sessionId}#${logged.origin.requestNo}`;
        const at = seen.get(request);
        if (at !== undefined) twice.push(`${request} at seq ${at} and ${logged.seq}`);
        seen.set(request, logged.seq);
      }
      expect(twice).toEqual([]);
      const putsOf = (key: string): number =>
        log.filter((l) => l.event.op === 'PUT_START' && l.event.key === key).length;
      expect([putsOf('lost-1'), putsOf('lost-2')]).toEqual([1, 1]);
      // Logged time moved with the run, not with the wall clocks: minutes, not hours.
      const span = log[log.length - 1]!.ts - log[0]!.ts;
      expect(span).toBeLessThan(10 * 60 * 1000);
    });
  },
);
