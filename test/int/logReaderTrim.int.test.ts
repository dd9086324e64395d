// Regression: a read of the live stream that a checkpoint's trim passes under. The failover
// bench read its cluster's log back while the checkpoint after its last writes trimmed the
// stream: the read jumped from entry 24,048 to 31,849 without a word, and the bench counted
// 7,768 acknowledged writes lost that every node held (their digests were equal). A read now
// fails with StreamTrimmedError when stream messages are trimmed away under it, says which
// messages went missing when they were deleted from the middle instead, and `readLoggedEvents`
// reads again from the new first message.
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import { opLogStreamName } from '../../src/adapters/nats/stream.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import { readLog, type SkippedItem } from '../../src/tools/log/logReader.ts';
import { natsLogSource, StreamTrimmedError } from '../../src/tools/log/logSource.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';

const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
/** Messages of the log, one entry each (seq n in stream message n). */
const MESSAGES = 2000;

describe('a read of the live stream that messages vanish under', () => {
  let nats: NatsServerHandle;

  beforeAll(async () => {
    nats = await startNats();
  }, 60_000);

  afterAll(async () => {
    await nats?.[Symbol.asyncDispose]();
  });

  /** A cluster whose log holds MESSAGES entries of one term, one per stream message. */
  async function writtenCluster(): Promise<string> {
    const cluster = `trim${randomUUID().slice(0, 8)}`;
    const nc = await connect({ servers: nats.url });
    try {
      const log = await createNatsOpLog({ nc, cluster });
      let last = 0;
      for (let seq = 1; seq <= MESSAGES; seq++) {
        const event =
          seq === 1
            ? { op: 'EPOCH' as const, epoch: 1, nodeId: 'n1' }
            : { op: 'REMOVE' as const, key: `k${seq}` };
        const entry = toEntry({ seq, epoch: 1, ts: T0 + seq, event });
        last = (await log.openWriter({ expectedLastStreamSeq: last }).append([entry])).streamSeq;
      }
      await log.close();
    } finally {
      await nc.close();
    }
    return cluster;
  }

  /** Runs `change` on the stream's manager, then closes it. */
  async function onStream(
    cluster: string,
    change: (jsm: Awaited<ReturnType<typeof jetstreamManager>>, stream: string) => Promise<unknown>,
  ): Promise<void> {
    const nc = await connect({ servers: nats.url });
    try {
      await change(await jetstreamManager(nc), opLogStreamName(cluster));
    } finally {
      await nc.close();
    }
  }

  it('fails with StreamTrimmedError when a trim passes under it, and is whole when read again', async () => {
    const cluster = await writtenCluster();
    const source = await natsLogSource({ cluster, servers: [nats.url], security: {} });
    const seen: number[] = [];
    let failure: unknown;
    try {
      for await (const item of source.read(1)) {
        if (item.kind !== 'entry') continue;
        seen.push(item.entry.seq);
        // A checkpoint at entry 1,500 trims the stream below it, with the read at entry 1.
        if (seen.length === 1)
          await onStream(cluster, (jsm, s) => jsm.streams.purge(s, { seq: 1500 }));
      }
    } catch (err) {
      failure = err;
    } finally {
      await source.close();
    }
    expect(failure).toBeInstanceOf(StreamTrimmedError);
    expect((failure as StreamTrimmedError).firstStreamSeq).toBe(1500);
    expect((failure as StreamTrimmedError).lost.to).toBeLessThan(1500);
    // What it yielded before failing had no hole.
    expect(seen).toEqual(seen.map((_, i) => i + 1));

    const events = await readLoggedEvents(nats.url, cluster);
    expect(events.map((e) => e.seq)).toEqual(
      Array.from({ length: MESSAGES - 1499 }, (_, i) => 1500 + i),
    );
  });

  it('names the messages deleted from the middle of the stream as missing', async () => {
    const cluster = await writtenCluster();
    await onStream(cluster, async (jsm, s) => {
      await jsm.streams.deleteMessage(s, 700);
      await jsm.streams.deleteMessage(s, 701);
    });
    const source = await natsLogSource({ cluster, servers: [nats.url], security: {} });
    const skipped: SkippedItem[] = [];
    const entries = await readLog(source, { onSkipped: (item) => skipped.push(item) });
    await source.close();
    expect(entries).toHaveLength(MESSAGES - 2);
    expect(skipped.map((i) => i.error.message)).toEqual([
      'entry on stream message 700 (seq unreadable): stream messages 700..701 are missing (deleted from the stream)',
    ]);
  });
});
