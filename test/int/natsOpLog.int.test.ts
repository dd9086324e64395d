// The NATS JetStream OpLog against real nats-server processes: pipelining, fencing, server
// restarts, reconnects, a replicated stream losing a server, and retention.
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterEach, describe, expect, it } from 'vitest';
import { createNatsOpLog, type NatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import { BatchSignature, oplogKeyId } from '../../src/adapters/nats/batchSignature.ts';
import { decodeBatch, encodeBatch } from '../../src/domain/log/codec.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import {
  FencedError,
  NotRetainedError,
  type AppendAck,
  type LogBatch,
  type LogFollower,
} from '../../src/ports/opLog.ts';
import { testEntries } from '../contract/entries.ts';
import { startNats, startNatsCluster, startTcpProxy } from '../harness/index.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // keep cleaning up
    }
  }
});

/** `count` entries from seq `from` on. */
function entries(from: number, count: number, epoch = 1): OpLogEntry[] {
  return testEntries(from, from + count - 1, epoch);
}

async function connectTo(servers: string | string[]): Promise<NatsConnection> {
  const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  cleanups.push(() => nc.close());
  return nc;
}

async function openLog(nc: NatsConnection, extra: { replicas?: 1 | 3 } = {}): Promise<NatsOpLog> {
  const log = await createNatsOpLog({ nc, cluster: `t${randomUUID().slice(0, 8)}`, ...extra });
  cleanups.push(() => log.close());
  return log;
}

async function openLogOn(nc: NatsConnection, cluster: string): Promise<NatsOpLog> {
  const log = await createNatsOpLog({ nc, cluster });
  cleanups.push(() => log.close());
  return log;
}

/** Reads the follower until entry `untilSeq` (or fails after `timeoutMs`). */
async function readUntil(
  follower: LogFollower,
  untilSeq: number,
  onEntry?: (seq: number) => Promise<void> | void,
  timeoutMs = 60_000,
): Promise<number[]> {
  const seen: number[] = [];
  const timer = setTimeout(() => follower.close(), timeoutMs);
  try {
    for await (const batch of follower) {
      for (const e of batch.entries) {
        seen.push(e.seq);
        await onEntry?.(e.seq);
      }
      if ((seen[seen.length - 1] ?? 0) >= untilSeq) break;
    }
  } finally {
    clearTimeout(timer);
    follower.close();
  }
  return seen;
}

/**
 * Every entry seq in the stream, in stream order, read directly with the manager. Retried
 * until a deadline: right after a server of a cluster is killed, JetStream API requests can
 * time out while the client reconnects or the cluster elects a new meta leader.
 */
async function streamEntries(
  nc: NatsConnection,
  log: NatsOpLog,
  timeoutMs = 60_000,
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await readStreamEntries(nc, log);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

async function readStreamEntries(nc: NatsConnection, log: NatsOpLog): Promise<number[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(log.streamName);
  const out: number[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const stored = await jsm.streams.getMessage(log.streamName, { seq });
    if (stored !== null) out.push(...decodeBatch(stored.data).map((e) => e.seq));
  }
  return out;
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('NATS OpLog', { timeout: 180_000 }, () => {
  it('stores 10,000 pipelined appends in order; a follower reads each exactly once', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await openLog(nc);
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    const follower = readUntil(log.follow(1), 10_000);
    const acks: Promise<AppendAck>[] = [];
    for (let seq = 1; seq <= 10_000; seq += 4) acks.push(writer.append(entries(seq, 4)));
    const results = await Promise.all(acks);
    results.forEach((ack, i) => {
      expect(ack.firstSeq).toBeLessThanOrEqual(1 + i * 4);
      expect(ack.lastSeq).toBeGreaterThanOrEqual(4 + i * 4);
    });
    expect(await follower).toEqual(range(1, 10_000));
    expect(await streamEntries(nc, log)).toEqual(range(1, 10_000));
    const bounds = await log.bounds();
    expect(bounds.firstSeq).toBe(1);
    expect(bounds.lastSeq).toBe(10_000);
    // Group commit: 100 entries per message at most, so at least 100 messages.
    expect(bounds.lastStreamSeq).toBeGreaterThanOrEqual(100);
    expect(bounds.lastStreamSeq).toBeLessThan(10_000);
  });

  it('fences a stale writer: its in-flight batches all fail with the right sequences', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await openLog(nc);
    const old = log.openWriter({ expectedLastStreamSeq: 0 });
    await old.append(entries(1, 2, 1));
    // A new primary (epoch 2) takes over at stream seq 1 and writes two messages.
    const fresh = log.openWriter({ expectedLastStreamSeq: 1 });
    await fresh.append(entries(3, 1, 2));
    await fresh.append(entries(4, 1, 2));
    // The stale writer still thinks it is at stream seq 1: several batches in flight.
    const stale = await Promise.allSettled([
      old.append(entries(3, 2, 1)),
      old.append(entries(5, 2, 1)),
      old.append(entries(7, 2, 1)),
    ]);
    // Same tick: group-committed into one message expecting 1.
    for (const result of stale) {
      expect(result.status).toBe('rejected');
      if (result.status === 'rejected') {
        const err = result.reason as FencedError;
        expect(err).toBeInstanceOf(FencedError);
        expect(err.expectedStreamSeq).toBe(1);
        expect(err.actualStreamSeq).toBe(3);
      }
    }
    expect(old.fenced).toBe(true);
    await expect(old.append(entries(9, 1, 1))).rejects.toBeInstanceOf(FencedError);
    expect(await streamEntries(nc, log)).toEqual([1, 2, 3, 4]);
  });

  it('fails every later in-flight message of a fenced writer', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await createNatsOpLog({
      nc,
      cluster: `t${randomUUID().slice(0, 8)}`,
      maxBatchEntries: 1,
    });
    cleanups.push(() => log.close());
    const fresh = log.openWriter({ expectedLastStreamSeq: 0 });
    await fresh.append(entries(1, 3, 2)); // stream seqs 1..3
    const stale = log.openWriter({ expectedLastStreamSeq: 0 });
    const results = await Promise.allSettled(
      [1, 2, 3, 4, 5].map((seq) => stale.append(entries(seq, 1, 1))),
    );
    results.forEach((result, i) => {
      expect(result.status).toBe('rejected');
      if (result.status === 'rejected') {
        const err = result.reason as FencedError;
        expect(err).toBeInstanceOf(FencedError);
        expect(err.expectedStreamSeq).toBe(i);
        if (err.actualStreamSeq !== undefined) expect(err.actualStreamSeq).toBe(3);
      }
    });
    expect(stale.fenced).toBe(true);
    expect(await streamEntries(nc, log)).toEqual([1, 2, 3]);
  });

  it('two writers of different epochs at an empty stream: exactly one extends it', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await openLog(nc);
    const a = log.openWriter({ expectedLastStreamSeq: 0 });
    const b = log.openWriter({ expectedLastStreamSeq: 0 });
    const results = await Promise.allSettled([
      a.append(entries(1, 2, 1)),
      b.append(entries(1, 2, 2)),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(await streamEntries(nc, log)).toEqual([1, 2]);
  });

  it('resumes a follower after a nats-server restart and after a client reconnect', async () => {
    await using server = await startNats();
    await using proxy = await startTcpProxy(server.port);
    const writerNc = await connectTo(server.url);
    const followerNc = await connectTo(`nats://127.0.0.1:${proxy.port}`);
    const log = await openLog(writerNc);
    const followLog = await openLogOn(followerNc, log.subject.split('.')[1] ?? '');
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    await writer.append(entries(1, 100));
    let seenCount = 0;
    const reading = readUntil(followLog.follow(1), 300, () => {
      seenCount++;
    });
    await until(() => seenCount >= 100, 'the first 100 entries');
    await server.restart();
    await writer.append(entries(101, 100));
    await until(() => seenCount >= 200, 'entries after the restart');
    proxy.cut();
    await writer.append(entries(201, 100));
    proxy.restore();
    expect(await reading).toEqual(range(1, 300));
    // A new follower from the middle after all that.
    expect(await readUntil(followLog.follow(150), 300)).toEqual(range(150, 300));
  });

  // Regression: with the v3 client, an ordered consumer recreated after a kill -9 and restart
  // of nats-server asked for 0 messages and never again; the follower stalled silently (for
  // 30 s and more in every run) while the writer went on.
  it('a follower catches up within seconds of a nats-server kill -9 and restart under a steady write load', async () => {
    await using server = await startNats();
    const writerNc = await connectTo(server.url);
    const followerNc = await connectTo(server.url);
    const log = await openLog(writerNc);
    const followLog = await openLogOn(followerNc, log.subject.split('.')[1] ?? '');
    let written = 0;
    let stop = false;
    // The writer goes on after the restart from where the stream is, as a primary would.
    const writing = (async () => {
      while (!stop) {
        try {
          const bounds = await log.bounds();
          written = bounds.lastSeq;
          const writer = log.openWriter({ expectedLastStreamSeq: bounds.lastStreamSeq });
          while (!stop) {
            await writer.append(entries(written + 1, 10));
            written += 10;
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    })();
    cleanups.push(async () => {
      stop = true;
      await writing;
    });
    let followed = 0;
    const follower = followLog.follow(1);
    const reading = (async () => {
      for await (const batch of follower) followed = batch.entries[batch.entries.length - 1]!.seq;
    })().catch(() => undefined);
    cleanups.push(() => follower.close());
    await until(() => followed >= 1000, 'the follower to read 1,000 entries');
    await server.kill();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await server.restart();
    const restartedAt = written;
    await until(() => written >= restartedAt + 200, 'the writer to append again');
    const target = written;
    await until(() => followed >= target, `the follower to reach ${target}`, 10_000);
    stop = true;
    await writing;
    follower.close();
    await reading;
  });

  it('restart while appends are in flight: acknowledged entries are stored once, failed ones not at all', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await createNatsOpLog({
      nc,
      cluster: `t${randomUUID().slice(0, 8)}`,
      maxBatchEntries: 10,
      ackTimeoutMs: 2_000,
      resolveTimeoutMs: 60_000,
    });
    cleanups.push(() => log.close());
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    const outcomes = new Map<number, 'ok' | 'failed'>();
    const pending: Promise<void>[] = [];
    let next = 1;
    const appendSome = (count: number): void => {
      for (let i = 0; i < count; i++) {
        const batch = entries(next, 5);
        next += 5;
        pending.push(
          writer.append(batch).then(
            () => batch.forEach((e) => outcomes.set(e.seq, 'ok')),
            () => batch.forEach((e) => outcomes.set(e.seq, 'failed')),
          ),
        );
      }
    };
    appendSome(200);
    const restarting = server.restart();
    appendSome(200);
    await restarting;
    appendSome(200);
    await Promise.all(pending);
    // Appends go on after the restart.
    expect(outcomes.get(next - 1)).toBe('ok');
    const stored = await streamEntries(nc, log);
    expect(new Set(stored).size).toBe(stored.length); // no entry twice
    for (const [seq, outcome] of outcomes) {
      if (outcome === 'ok') expect(stored).toContain(seq);
      else expect(stored).not.toContain(seq);
    }
    // Stored entries are a contiguous prefix of what was appended.
    expect(stored).toEqual(range(1, stored.length));
  });

  it('replicas 3: killing one server during appends loses no acknowledged entry', async () => {
    await using cluster = await startNatsCluster(3);
    const nc = await connectTo([...cluster.urls]);
    const log = await openLog(nc, { replicas: 3 });
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    const acked: number[] = [];
    const rounds: Promise<void>[] = [];
    let next = 1;
    const appendSome = (count: number): void => {
      for (let i = 0; i < count; i++) {
        const batch = entries(next, 5);
        next += 5;
        rounds.push(
          writer.append(batch).then(
            () => {
              acked.push(...batch.map((e) => e.seq));
            },
            () => undefined,
          ),
        );
      }
    };
    appendSome(100);
    const victim = cluster.servers[2];
    if (victim === undefined) throw new Error('no server');
    await victim.kill();
    appendSome(100);
    await Promise.all(rounds);
    // Appends continue on the two that are left.
    const more = await writer.append(entries(next, 5));
    expect(more.lastSeq).toBe(next + 4);
    const stored = new Set(await streamEntries(nc, log));
    for (const seq of acked) expect(stored.has(seq)).toBe(true);
  });

  it('with an OpLog key, a message without its valid HMAC is no batch: passed over, even well-formed entries', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const cluster = `t${randomUUID().slice(0, 8)}`;
    const key = new Uint8Array(32).fill(7);
    const signed = await createNatsOpLog({ nc, cluster, signingKey: key });
    cleanups.push(() => signed.close());
    await signed.openWriter({ expectedLastStreamSeq: 0 }).append(entries(1, 3));
    const js = jetstream(nc);
    // An outsider's well-formed batches: unsigned, and signed with another key.
    await js.publish(signed.subject, encodeBatch(entries(4, 1)));
    const wrong = new BatchSignature(new Uint8Array(32).fill(8));
    const bytes = encodeBatch(entries(4, 1, 2));
    await js.publish(signed.subject, bytes, { headers: wrong.headersFor(bytes)! });
    await signed.openWriter({ expectedLastStreamSeq: 3 }).append(entries(4, 2));
    const batches: LogBatch[] = [];
    const follower = signed.follow(1);
    for await (const batch of follower) {
      batches.push(batch);
      if (batch.streamSeq >= 4) break;
    }
    follower.close();
    expect(
      batches.map((b) =>
        b.undecodable === undefined ? b.entries.map((e) => e.seq) : b.undecodable,
      ),
    ).toEqual([
      [1, 2, 3],
      'signature: the batch is not signed',
      `signature: the batch is signed under key id ${wrong.keyId}, not this node's ${oplogKeyId(key)}`,
      [4, 5],
    ]);
    expect(await signed.bounds()).toEqual({ firstSeq: 1, lastSeq: 5, lastStreamSeq: 4 });
    // A log without the key reads the signed messages too (and cannot tell the others apart).
    const plain = await openLogOn(nc, cluster);
    expect((await readUntil(plain.follow(1), 5)).length).toBeGreaterThanOrEqual(5);
    // Another key refuses the primary's own messages.
    const other = await createNatsOpLog({ nc, cluster, signingKey: new Uint8Array(32).fill(9) });
    cleanups.push(() => other.close());
    expect(await other.bounds()).toEqual({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 4 });
  });

  it('following from an entry the stream no longer retains fails with NotRetainedError', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await openLog(nc);
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    for (let seq = 1; seq <= 50; seq += 5) await writer.append(entries(seq, 5));
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge(log.streamName, { keep: 2 });
    expect(await log.bounds()).toEqual({ firstSeq: 41, lastSeq: 50, lastStreamSeq: 10 });
    const err = await readUntil(log.follow(3), 50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotRetainedError);
    expect((err as NotRetainedError).firstRetainedSeq).toBe(41);
    expect(await readUntil(log.follow(43), 50)).toEqual(range(43, 50));
  });

  // Regression (failover bench, full run): a restarted standby folding the log from seq 1 was
  // at entry 60,488 when a checkpoint at 116,704 trimmed the stream under it. Its consumer went
  // on at the first message kept; the fences between were gone, so the node took every entry
  // after as foreign (99,080 skipped, "stamped with epoch 307, not the current epoch 188") and
  // sat for 26 s until a verification round asked for a full sync. A follower now fails with
  // NotRetainedError there, as the memory log's does, and the node restores at once.
  it('a trim that passes under a follower fails it with NotRetainedError, not a jump ahead', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await openLog(nc);
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    // 400 messages of 5 entries: far more than one pull of the follower's consumer.
    for (let seq = 1; seq <= 2000; seq += 5)
      await writer.append(entries(seq, 5, seq < 1000 ? 1 : 2));
    const seen: number[] = [];
    const err = await readUntil(log.follow(1), 2000, async (seq) => {
      seen.push(seq);
      // With the follower at entry 1, trim through stream message 300 (entries 1..1500).
      if (seq === 1) await log.trimThrough(300);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotRetainedError);
    expect((err as NotRetainedError).firstRetainedSeq).toBe(1501);
    expect((err as NotRetainedError).requestedSeq).toBe(seen.at(-1)! + 1);
    // What it delivered before failing had no hole.
    expect(seen).toEqual(range(1, seen.length));
    expect(await readUntil(log.follow(1501), 2000)).toEqual(range(1501, 2000));
  });

  it('trimThrough keeps every later message; an emptied stream still reports its last sequence', async () => {
    await using server = await startNats();
    const nc = await connectTo(server.url);
    const log = await openLog(nc);
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    for (let seq = 1; seq <= 50; seq += 5) await writer.append(entries(seq, 5));
    await log.trimThrough(7);
    expect(await log.bounds()).toEqual({ firstSeq: 36, lastSeq: 50, lastStreamSeq: 10 });
    expect(await readUntil(log.follow(36), 50)).toEqual(range(36, 50));
    await log.trimThrough(10);
    // nats-server 2.9 keeps last_seq after a purge: the stream is empty but not new.
    expect(await log.bounds()).toEqual({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 10 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge(log.streamName);
    expect(await log.bounds()).toEqual({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 10 });
    // A follower of the empty stream gets the next entry; a writer fenced on seq 10 goes on.
    const follower = log.follow(51);
    const next = log.openWriter({ expectedLastStreamSeq: 10 });
    expect(await next.append(entries(51, 3))).toMatchObject({ streamSeq: 11, lastSeq: 53 });
    expect(await readUntil(follower, 53)).toEqual(range(51, 53));
  });
});
