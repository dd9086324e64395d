import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { createEtcdOpLog } from '../../src/adapters/etcd/etcdOpLog.ts';
import type { EtcdOpLogPipelining } from '../../src/adapters/etcd/etcdOpLogWriter.ts';
import { messageKey } from '../../src/adapters/etcd/etcdStream.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  NotRetainedError,
  OpLogClosedError,
  type LogFollower,
  type OpLog,
} from '../../src/ports/opLog.ts';
import { testEntries, testEntry } from '../contract/entries.ts';
import { startEtcd } from '../harness/index.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // Keep cleaning up.
    }
  }
});

/** `count` entries from seq `from` on. */
function entries(from: number, count: number, epoch = 1): OpLogEntry[] {
  return testEntries(from, from + count - 1, epoch);
}

function openLog(endpoint: string, cluster: string, pipelining: EtcdOpLogPipelining): OpLog {
  const log = createEtcdOpLog({ client: { endpoints: [endpoint] }, cluster, pipelining });
  cleanups.push(() => log.close());
  return log;
}

/** Reads batches until entry `lastSeq` arrives; returns the entry seqs seen, in order. */
async function collect(
  follower: LogFollower,
  lastSeq: number,
  timeoutMs = 20_000,
): Promise<number[]> {
  const seqs: number[] = [];
  const timer = setTimeout(() => {
    follower.close();
  }, timeoutMs);
  try {
    for await (const batch of follower) {
      seqs.push(...batch.entries.map((item) => item.seq));
      if (seqs[seqs.length - 1] === lastSeq) break;
    }
  } finally {
    clearTimeout(timer);
    follower.close();
  }
  return seqs;
}

/**
 * A log on an etcd of its own holding `batches` messages of 2 entries (1-2, 3-4, ...), with
 * stream message `deleted` removed as a trim removes it.
 */
async function logWithout(
  pipelining: EtcdOpLogPipelining,
  batches: number,
  deleted: number,
): Promise<OpLog> {
  const etcd = await startEtcd();
  cleanups.push(async () => {
    await etcd[Symbol.asyncDispose]();
  });
  const cluster = `t${randomUUID().slice(0, 8)}`;
  const log = openLog(etcd.endpoint, cluster, pipelining);
  const writer = log.openWriter({ expectedLastStreamSeq: 0 });
  for (let b = 0; b < batches; b++) await writer.append(entries(1 + 2 * b, 2));
  const client = new Etcd3({ hosts: [etcd.endpoint] });
  cleanups.push(() => client.close());
  await client.delete().key(messageKey(cluster, deleted));
  return log;
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, index) => from + index);

describe.each(['coalesce', 'concurrent'] as const)(
  'etcd OpLog (%s) against a real etcd',
  (pipelining) => {
    it('stores pipelined appends in order, follows them (live and from the middle of a batch), reports bounds', async () => {
      await using etcd = await startEtcd();
      const log = openLog(etcd.endpoint, `t${randomUUID().slice(0, 8)}`, pipelining);
      expect(await log.bounds()).toEqual({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 0 });

      const live = log.follow(1);
      const liveSeqs = collect(live, 303);

      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      const batch = await writer.append(entries(1, 3));
      expect(batch).toEqual({ streamSeq: 1, firstSeq: 1, lastSeq: 3 });
      // 300 single-entry appends in flight at once.
      const acks = await Promise.all(range(4, 303).map((seq) => writer.append([testEntry(seq)])));
      expect(acks.map((ack) => ack.streamSeq)).toEqual(range(2, 301));
      expect(writer.fenced).toBe(false);

      expect(await liveSeqs).toEqual(range(1, 303));
      expect(await log.bounds()).toEqual({ firstSeq: 1, lastSeq: 303, lastStreamSeq: 301 });
      expect(await collect(log.follow(2), 303)).toEqual(range(2, 303));
      expect(await collect(log.follow(150), 303)).toEqual(range(150, 303));
      await writer.close();
    });

    it('refuses empty and out-of-order appends (AppendOrderError) and appends after close (OpLogClosedError)', async () => {
      await using etcd = await startEtcd();
      const log = openLog(etcd.endpoint, `t${randomUUID().slice(0, 8)}`, pipelining);
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      await writer.append(entries(1, 1));
      await expect(writer.append([])).rejects.toBeInstanceOf(AppendOrderError);
      await expect(writer.append(entries(3, 1))).rejects.toBeInstanceOf(AppendOrderError);
      expect(writer.fenced).toBe(false);
      await writer.append(entries(2, 1));
      await writer.close();
      await expect(writer.append(entries(3, 1))).rejects.toBeInstanceOf(OpLogClosedError);
      expect((await log.bounds()).lastSeq).toBe(2);
    });

    it('fences a writer whose view is stale, including appends already in flight', async () => {
      await using etcd = await startEtcd();
      const cluster = `t${randomUUID().slice(0, 8)}`;
      const log = openLog(etcd.endpoint, cluster, pipelining);
      const first = log.openWriter({ expectedLastStreamSeq: 0 });
      await first.append([testEntry(1)]);

      // A writer that expects an older tail is refused at once.
      const stale = log.openWriter({ expectedLastStreamSeq: 0 });
      await expect(stale.append([testEntry(1, 2)])).rejects.toBeInstanceOf(FencedError);
      expect(stale.fenced).toBe(true);
      await expect(stale.append([testEntry(2, 2)])).rejects.toBeInstanceOf(FencedError);

      // A new primary takes over at stream seq 1; the old one's next appends are all refused,
      // even the one whose expected sequence matches the new primary's message.
      const second = log.openWriter({ expectedLastStreamSeq: 1 });
      await second.append([testEntry(2, 2)]);
      const inFlight = [first.append([testEntry(2)]), first.append([testEntry(3)])];
      for (const result of await Promise.allSettled(inFlight)) {
        expect(result.status).toBe('rejected');
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(FencedError);
      }
      expect(first.fenced).toBe(true);
      await expect(first.append([testEntry(4)])).rejects.toBeInstanceOf(FencedError);

      expect(await log.bounds()).toEqual({ firstSeq: 1, lastSeq: 2, lastStreamSeq: 2 });
      const followed: OpLogEntry[] = [];
      for await (const batch of log.follow(1)) {
        followed.push(...batch.entries);
        if (followed.length === 2) break;
      }
      expect(followed.map((item) => [item.seq, item.epoch])).toEqual([
        [1, 1],
        [2, 2],
      ]);
    });

    it('two writers racing from the same tail: exactly one extends the log', async () => {
      await using etcd = await startEtcd();
      const log = openLog(etcd.endpoint, `t${randomUUID().slice(0, 8)}`, pipelining);
      const a = log.openWriter({ expectedLastStreamSeq: 0 });
      const b = log.openWriter({ expectedLastStreamSeq: 0 });
      const results = await Promise.allSettled([
        ...range(1, 20).map((seq) => a.append([testEntry(seq, 1)])),
        ...range(1, 20).map((seq) => b.append([testEntry(seq, 2)])),
      ]);
      const fulfilledA = results
        .slice(0, 20)
        .filter((result) => result.status === 'fulfilled').length;
      const fulfilledB = results.slice(20).filter((result) => result.status === 'fulfilled').length;
      expect([fulfilledA, fulfilledB].sort()).toEqual([0, 20]);
      const bounds = await log.bounds();
      expect(bounds.lastStreamSeq).toBe(20);
    });

    it('refuses to follow from an entry the log no longer retains', async () => {
      const log = await logWithout(pipelining, 2, 1);
      expect((await log.bounds()).firstSeq).toBe(3);
      const follower = log.follow(1);
      await expect(collect(follower, 4)).rejects.toBeInstanceOf(NotRetainedError);
    });

    it('a gap in the messages it reads (trimmed under it) is NotRetainedError, so the node syncs at once', async () => {
      // Regression: the gap was a plain Error, which the node's follower retried (one retry
      // delay) before the next locate found the entry trimmed.
      const log = await logWithout(pipelining, 3, 2);
      const failed = collect(log.follow(1), 6).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(await failed).toMatchObject({
        name: 'NotRetainedError',
        requestedSeq: 3,
        firstRetainedSeq: 5,
      });
    });

    it('never acknowledges an append whose answer did not come (etcd paused)', async () => {
      await using etcd = await startEtcd();
      const cluster = `t${randomUUID().slice(0, 8)}`;
      const log = createEtcdOpLog({
        client: { endpoints: [etcd.endpoint] },
        cluster,
        pipelining,
        callTimeoutMs: 1_000,
      });
      cleanups.push(() => log.close());
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      await writer.append([testEntry(1)]);
      etcd.pause();
      let outcome: unknown;
      try {
        outcome = await writer.append([testEntry(2)]).catch((error: unknown) => error);
      } finally {
        etcd.resume();
      }
      expect(outcome).toBeInstanceOf(AmbiguousAppendError);
      expect(writer.fenced).toBe(true);
      await expect(writer.append([testEntry(3)])).rejects.toThrow();
      // Whether entry 2 landed is unknown to the writer; the log is consistent either way.
      const bounds = await log.bounds();
      expect([1, 2]).toContain(bounds.lastSeq);
      const seqs = await collect(log.follow(1), bounds.lastSeq);
      expect(seqs).toEqual(range(1, bounds.lastSeq));
    });
  },
);
