// Regression, with real servers (CI, natsHang.e2e, 2026-12-06): a read of the log right after a
// stopped NATS server came back ended short whenever its consumer sat on that server's replica,
// still catching up, which counts 0 messages pending at its own end (the read used to end
// there). Three clustered nats-servers, an R3 stream; one follower is stopped while the log
// grows, then resumed, and the log is read at once by eight readers (each read's consumer lands
// on a replica the server picks): every read must give the whole log. With the old end it
// failed in about half the runs (the server picks the replica, and the follower may have caught
// up by the time JetStream answers again); the replica's count and the leader's apart every
// time: test/unit/natsLogSourceEnd.unit.test.ts.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { createNatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import { opLogStreamName, opLogSubject } from '../../src/adapters/nats/stream.ts';
import { encodeBatch } from '../../src/domain/log/codec.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import { readLog } from '../../src/tools/log/logReader.ts';
import { LogUnavailableError, natsLogSource } from '../../src/tools/log/logSource.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { startNatsCluster } from '../harness/index.ts';

const CLUSTER = 'lagging';
const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
/** Entries per message, and messages written while the follower is stopped. */
const PER_MESSAGE = 1;
const WHILE_STOPPED = 30_000;
const STOPPED_MS = 12_000;

const batch = (from: number) =>
  encodeBatch(
    Array.from({ length: PER_MESSAGE }, (_, i) => {
      const seq = from + i;
      return toEntry(
        seq === 1
          ? { seq, epoch: 1, ts: T0, event: { op: 'EPOCH', epoch: 1, nodeId: 'n1' } }
          : { seq, epoch: 1, ts: T0 + seq, event: { op: 'PUT_END', key: `k${seq}` } },
      );
    }),
  );

/**
 * The log read from `servers`, again while the read fails and says so (LogUnavailableError):
 * right after the stopped server is back JetStream may answer "temporarily unavailable", and a
 * read whose consumer sits on the lagging replica waits for it and gives up after 30 s without
 * a message (seen once on 2 loaded cores: the replica was still behind); the next read's
 * consumer may land elsewhere. A short read is no error: it fails the test.
 */
async function readWhenAvailable(servers: string[]): Promise<OpLogEntry[]> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const source = await natsLogSource({ cluster: CLUSTER, servers, security: {} });
      try {
        return await readLog(source);
      } finally {
        await source.close();
      }
    } catch (error) {
      if (!(error instanceof LogUnavailableError) || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

describe('reading the log from a cluster with a lagging replica (real nats-servers)', () => {
  it('every read right after a stopped follower returns gives the whole log', async () => {
    await using nats = await startNatsCluster(3);
    const setup = await connect({ servers: [...nats.urls] });
    try {
      await createNatsOpLog({ nc: setup, cluster: CLUSTER, replicas: 3 });
      const jsm = await jetstreamManager(setup);
      const { cluster } = await jsm.streams.info(opLogStreamName(CLUSTER));
      const follower = nats.servers.find((s) => s.name !== cluster?.leader)!;
      const others = nats.servers.filter((s) => s !== follower);
      // Write through the servers that stay up (a client of the stopped one would hang).
      const writer = await connect({ servers: others.map((s) => s.url) });
      try {
        const js = jetstream(writer);
        const subject = opLogSubject(CLUSTER);
        let next = 1;
        const write = async (messages: number) => {
          for (let m = 0; m < messages; m += 100) {
            const acks = [];
            for (let i = m; i < Math.min(messages, m + 100); i++) {
              acks.push(js.publish(subject, batch(next)));
              next += PER_MESSAGE;
            }
            await Promise.all(acks);
          }
        };
        await write(10);
        follower.pause();
        const pausedAt = Date.now();
        try {
          await write(WHILE_STOPPED);
          // Long enough for the leader to stop keeping the follower's log in memory (as in
          // natsHang.e2e's 12 s hang): it then catches up message by message.
          await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + STOPPED_MS - Date.now())));
        } finally {
          follower.resume();
        }
        const total = next - 1;
        const reads = Array.from({ length: 8 }, async (_, read) => {
          const entries = await readWhenAvailable(others.map((s) => s.url));
          expect(entries.length, `read ${read}`).toBe(total);
          expect(entries.at(-1)?.seq).toBe(total);
        });
        await Promise.all(reads);
      } finally {
        await writer.close();
      }
    } finally {
      await setup.close();
    }
  }, 240_000);
});
