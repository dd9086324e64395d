// The OpLog port's contract, run against every adapter (memory, NATS JetStream, etcd).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import {
  AppendOrderError,
  FencedError,
  NotRetainedError,
  OpLogClosedError,
  type LogBatch,
  type LogFollower,
  type OpLog,
} from '../../src/ports/opLog.ts';
import { testEntries } from './entries.ts';

export interface OpLogContractSetup {
  /** A log over the same stream as every other `makeLog()` of this setup (another node). */
  makeLog(): Promise<OpLog>;
  /**
   * Stores a message that is not a batch of entries, as an outsider publishing to the log
   * would (no expected last sequence); resolves with its stream sequence. Required when the
   * adapter declares `undecodable`.
   */
  publishUndecodable?(): Promise<number>;
  /**
   * Stores well-formed `entries` as one message the same way (no expected last sequence, any
   * seqs); resolves with its stream sequence. Required when the adapter declares `undecodable`.
   */
  publishOutsider?(entries: readonly OpLogEntry[]): Promise<number>;
  cleanup(): Promise<void>;
}

/** What an adapter can do beyond the port's required methods. */
export interface OpLogCapabilities {
  /** `trimThrough` is implemented: the trim case runs (and fails if it is missing). */
  readonly trims: boolean;
  /**
   * Others can store messages that do not decode (a NATS subject anyone may publish to, a
   * corrupt stream file): the case of passing over them runs.
   */
  readonly undecodable: boolean;
}

/** How long a follower may take to deliver what is already stored (real servers, loaded CI). */
const FOLLOW_TIMEOUT_MS = 20_000;

/**
 * Reads `follower` until it has delivered entry `untilSeq`; fails after a generous timeout.
 * Closes the follower.
 */
export async function collectUntil(follower: LogFollower, untilSeq: number): Promise<OpLogEntry[]> {
  const seen: OpLogEntry[] = [];
  const timer = setTimeout(() => follower.close(), FOLLOW_TIMEOUT_MS);
  try {
    for await (const batch of follower) {
      seen.push(...batch.entries);
      if ((seen[seen.length - 1]?.seq ?? 0) >= untilSeq) break;
    }
  } finally {
    clearTimeout(timer);
    follower.close();
  }
  if ((seen[seen.length - 1]?.seq ?? 0) < untilSeq) {
    throw new Error(`follower stopped at ${seen[seen.length - 1]?.seq ?? 0}, wanted ${untilSeq}`);
  }
  return seen;
}

/** Reads `follower` until it has delivered stream message `untilStreamSeq`; closes it. */
async function collectBatches(follower: LogFollower, untilStreamSeq: number): Promise<LogBatch[]> {
  const seen: LogBatch[] = [];
  const timer = setTimeout(() => follower.close(), FOLLOW_TIMEOUT_MS);
  try {
    for await (const batch of follower) {
      seen.push(batch);
      if (batch.streamSeq >= untilStreamSeq) break;
    }
  } finally {
    clearTimeout(timer);
    follower.close();
  }
  if ((seen[seen.length - 1]?.streamSeq ?? 0) < untilStreamSeq) {
    throw new Error(
      `follower stopped at stream message ${seen[seen.length - 1]?.streamSeq ?? 0}, wanted ${untilStreamSeq}`,
    );
  }
  return seen;
}

const seqs = (entries: readonly OpLogEntry[]): number[] => entries.map((entry) => entry.seq);
const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * Registers the OpLog contract tests; `setup` runs before each test with a fresh stream. The
 * cases of optional methods are registered only where `capabilities` says the adapter has
 * them, so no case is skipped at run time.
 */
export function describeOpLogContract(
  name: string,
  setup: () => Promise<OpLogContractSetup>,
  capabilities: OpLogCapabilities,
): void {
  describe(`OpLog contract: ${name}`, () => {
    let ctx: OpLogContractSetup | undefined;
    const logs: OpLog[] = [];
    const makeLog = async (): Promise<OpLog> => {
      if (ctx === undefined) throw new Error('setup did not run');
      const log = await ctx.makeLog();
      logs.push(log);
      return log;
    };

    beforeEach(async () => {
      ctx = await setup();
    });

    afterEach(async () => {
      for (const log of logs.splice(0)) await log.close();
      await ctx?.cleanup();
      ctx = undefined;
    });

    it('stores pipelined appends in order and acknowledges the message holding each', async () => {
      const log = await makeLog();
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      const calls = [testEntries(1, 3), testEntries(4, 4), testEntries(5, 9)];
      const acks = await Promise.all(calls.map((entries) => writer.append(entries)));
      // Group commit may put entries handed over together into one message: each ack names
      // the message that holds its entries, in stream order.
      acks.forEach((ack, i) => {
        const entries = calls[i] ?? [];
        expect(ack.firstSeq).toBeLessThanOrEqual(entries[0]?.seq ?? 0);
        expect(ack.lastSeq).toBeGreaterThanOrEqual(entries[entries.length - 1]?.seq ?? 0);
        expect(ack.streamSeq).toBeGreaterThanOrEqual(i === 0 ? 1 : (acks[i - 1]?.streamSeq ?? 0));
      });
      expect(acks[0]?.firstSeq).toBe(1);
      expect(acks[2]?.lastSeq).toBe(9);
      expect(writer.fenced).toBe(false);
      expect(await log.bounds()).toEqual({
        firstSeq: 1,
        lastSeq: 9,
        lastStreamSeq: acks[2]?.streamSeq,
      });
      await writer.close();
    });

    it('refuses empty and out-of-order appends (AppendOrderError) and appends after close (OpLogClosedError)', async () => {
      const log = await makeLog();
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      await writer.append(testEntries(1, 1));
      await expect(writer.append([])).rejects.toBeInstanceOf(AppendOrderError);
      await expect(writer.append(testEntries(3, 3))).rejects.toBeInstanceOf(AppendOrderError);
      expect(writer.fenced).toBe(false);
      await writer.append(testEntries(2, 2));
      await writer.close();
      await expect(writer.append(testEntries(3, 3))).rejects.toBeInstanceOf(OpLogClosedError);
      expect((await log.bounds()).lastSeq).toBe(2);
    });

    it('acknowledges appends awaited one by one as one message each', async () => {
      const log = await makeLog();
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      expect(await writer.append(testEntries(1, 3))).toEqual({
        streamSeq: 1,
        firstSeq: 1,
        lastSeq: 3,
      });
      expect(await writer.append(testEntries(4, 4))).toEqual({
        streamSeq: 2,
        firstSeq: 4,
        lastSeq: 4,
      });
    });

    it('lets every node follow every entry exactly once, in order, with intact entries', async () => {
      const primary = await makeLog();
      const standby = await makeLog();
      const writer = primary.openWriter({ expectedLastStreamSeq: 0 });
      const written = [...testEntries(1, 3), ...testEntries(4, 4), ...testEntries(5, 9)];
      await Promise.all([
        writer.append(written.slice(0, 3)),
        writer.append(written.slice(3, 4)),
        writer.append(written.slice(4)),
      ]);
      for (const log of [primary, standby]) {
        const seen = await collectUntil(log.follow(1), 9);
        expect(seqs(seen)).toEqual(range(1, 9));
        expect(seen.map((entry) => ({ ...entry, payload: [...entry.payload] }))).toEqual(
          written.map((entry) => ({ ...entry, payload: [...entry.payload] })),
        );
      }
    });

    it('delivers batches with their stream sequence', async () => {
      const log = await makeLog();
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      await writer.append(testEntries(1, 2));
      await writer.append(testEntries(3, 5));
      const follower = log.follow(1);
      const batches: { streamSeq: number; seqs: number[] }[] = [];
      for await (const batch of follower) {
        batches.push({ streamSeq: batch.streamSeq, seqs: seqs(batch.entries) });
        if (batch.entries[batch.entries.length - 1]?.seq === 5) break;
      }
      follower.close();
      expect(batches).toEqual([
        { streamSeq: 1, seqs: [1, 2] },
        { streamSeq: 2, seqs: [3, 4, 5] },
      ]);
    });

    it('follows from the middle of a batch and then waits for new appends', async () => {
      const log = await makeLog();
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      await writer.append(testEntries(1, 3));
      await writer.append(testEntries(4, 6));
      const fromMiddle = collectUntil(log.follow(2), 8);
      const fromLater = collectUntil((await makeLog()).follow(5), 8);
      const afterEnd = collectUntil(log.follow(7), 8);
      await writer.append(testEntries(7, 8));
      expect(seqs(await fromMiddle)).toEqual(range(2, 8));
      expect(seqs(await fromLater)).toEqual(range(5, 8));
      expect(seqs(await afterEnd)).toEqual([7, 8]);
    });

    it('fences a stale writer: its append and every later one are rejected', async () => {
      const a = await makeLog();
      const b = await makeLog();
      const oldPrimary = a.openWriter({ expectedLastStreamSeq: 0 });
      await oldPrimary.append(testEntries(1, 2));
      const newPrimary = b.openWriter({ expectedLastStreamSeq: 1 });
      expect(await newPrimary.append(testEntries(3, 3))).toEqual({
        streamSeq: 2,
        firstSeq: 3,
        lastSeq: 3,
      });
      const rejected = await oldPrimary.append(testEntries(3, 4)).catch((err: unknown) => err);
      expect(rejected).toBeInstanceOf(FencedError);
      const fenced = rejected as FencedError;
      expect(fenced.expectedStreamSeq).toBe(1);
      if (fenced.actualStreamSeq !== undefined) expect(fenced.actualStreamSeq).toBe(2);
      expect(fenced.retryable).toBe(true);
      expect(oldPrimary.fenced).toBe(true);
      await expect(oldPrimary.append(testEntries(3, 3))).rejects.toBeInstanceOf(FencedError);
      // The new primary goes on.
      expect((await newPrimary.append(testEntries(4, 4))).streamSeq).toBe(3);
      expect(seqs(await collectUntil(a.follow(1), 4))).toEqual([1, 2, 3, 4]);
    });

    it('rejects every in-flight append of a stale writer', async () => {
      const a = await makeLog();
      const b = await makeLog();
      await a.openWriter({ expectedLastStreamSeq: 0 }).append(testEntries(1, 1));
      const stale = b.openWriter({ expectedLastStreamSeq: 0 });
      const results = await Promise.allSettled([
        stale.append(testEntries(2, 2)),
        stale.append(testEntries(3, 3)),
        stale.append(testEntries(4, 5)),
      ]);
      for (const result of results) {
        expect(result.status).toBe('rejected');
        if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(FencedError);
      }
      expect(stale.fenced).toBe(true);
      expect(await a.bounds()).toEqual({ firstSeq: 1, lastSeq: 1, lastStreamSeq: 1 });
    });

    it('of two writers opened at the same point, exactly one extends the log', async () => {
      const a = await makeLog();
      const b = await makeLog();
      const first = a.openWriter({ expectedLastStreamSeq: 0 });
      const second = b.openWriter({ expectedLastStreamSeq: 0 });
      const results = await Promise.allSettled([
        first.append(testEntries(1, 2)),
        second.append(testEntries(1, 2)),
      ]);
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      expect([first.fenced, second.fenced].filter(Boolean)).toHaveLength(1);
      expect(await a.bounds()).toEqual({ firstSeq: 1, lastSeq: 2, lastStreamSeq: 1 });
    });

    it('reports bounds: empty, then the retained range', async () => {
      const log = await makeLog();
      expect(await log.bounds()).toEqual({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 0 });
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      await writer.append(testEntries(1, 4));
      await writer.append(testEntries(5, 5));
      expect(await log.bounds()).toEqual({ firstSeq: 1, lastSeq: 5, lastStreamSeq: 2 });
      expect(await (await makeLog()).bounds()).toEqual({
        firstSeq: 1,
        lastSeq: 5,
        lastStreamSeq: 2,
      });
    });

    if (capabilities.trims) {
      it('trims through a stream message and keeps the real last sequence when emptied', async () => {
        const log = await makeLog();
        if (log.trimThrough === undefined)
          throw new Error(`${name} says it trims but has no trimThrough`);
        const writer = log.openWriter({ expectedLastStreamSeq: 0 });
        await writer.append(testEntries(1, 4));
        await writer.append(testEntries(5, 6));
        await writer.append(testEntries(7, 9));
        await log.trimThrough(1);
        expect(await log.bounds()).toEqual({ firstSeq: 5, lastSeq: 9, lastStreamSeq: 3 });
        expect(seqs(await collectUntil(log.follow(5), 9))).toEqual(range(5, 9));
        await log.trimThrough(3);
        expect(await (await makeLog()).bounds()).toEqual({
          firstSeq: 0,
          lastSeq: 0,
          lastStreamSeq: 3,
        });
        const follower = log.follow(10);
        await log.openWriter({ expectedLastStreamSeq: 3 }).append(testEntries(10, 11));
        expect(seqs(await collectUntil(follower, 11))).toEqual([10, 11]);
      });
    }

    if (capabilities.undecodable) {
      it('passes over a stored message that is not a batch of entries: followers report it in place and go on, bounds look past it, the writer whose slot it took is fenced', async () => {
        const setup = ctx;
        if (setup?.publishUndecodable === undefined) {
          throw new Error(`${name} has no publishUndecodable`);
        }
        const publish = (): Promise<number> => setup.publishUndecodable!();
        const log = await makeLog();
        const writer = log.openWriter({ expectedLastStreamSeq: 0 });
        await writer.append(testEntries(1, 3));
        expect(await publish()).toBe(2);
        expect(await log.bounds()).toEqual({ firstSeq: 1, lastSeq: 3, lastStreamSeq: 2 });
        await expect(writer.append(testEntries(4, 4))).rejects.toBeInstanceOf(FencedError);
        await log.openWriter({ expectedLastStreamSeq: 2 }).append(testEntries(4, 5));
        expect(await publish()).toBe(4);
        expect(await log.bounds()).toEqual({ firstSeq: 1, lastSeq: 5, lastStreamSeq: 4 });
        const shape = (batches: readonly LogBatch[]): (number[] | string)[] =>
          batches.map((b) =>
            b.undecodable === undefined ? seqs(b.entries) : `bad@${b.streamSeq}`,
          );
        expect(shape(await collectBatches(log.follow(1), 4))).toEqual([
          [1, 2, 3],
          'bad@2',
          [4, 5],
          'bad@4',
        ]);
        // From entry 4: the message holding it first; the bad message before it is not this
        // follower's (it starts after it).
        expect(shape(await collectBatches(log.follow(4), 4))).toEqual([[4, 5], 'bad@4']);
        expect(shape(await collectBatches(log.follow(5), 4))).toEqual([[5], 'bad@4']);
        // From an entry not stored yet: what comes after the stream's end.
        const follower = log.follow(6);
        await log.openWriter({ expectedLastStreamSeq: 4 }).append(testEntries(6, 6));
        expect(shape(await collectBatches(follower, 5))).toEqual([[6]]);
      });
    }

    if (capabilities.undecodable) {
      it("delivers an outsider's entries in stream order whatever their seqs; a follower told the last message it read starts right after it", async () => {
        const setup = ctx;
        if (setup?.publishOutsider === undefined) throw new Error(`${name} has no publishOutsider`);
        const log = await makeLog();
        await log.openWriter({ expectedLastStreamSeq: 0 }).append(testEntries(1, 3));
        // Forged: entry 4 (of another epoch), and one far ahead.
        expect(await setup.publishOutsider(testEntries(4, 4, 99))).toBe(2);
        expect(await setup.publishOutsider(testEntries(1000, 1000, 99))).toBe(3);
        await log.openWriter({ expectedLastStreamSeq: 3 }).append(testEntries(4, 5));
        const shape = (batches: readonly LogBatch[]): string[] =>
          batches.map(
            (b) => `${b.streamSeq}:${b.entries.map((e) => `${e.seq}@${e.epoch}`).join(',')}`,
          );
        expect(shape(await collectBatches(log.follow(1), 4))).toEqual([
          '1:1@1,2@1,3@1',
          '2:4@99',
          '3:1000@99',
          '4:4@1,5@1',
        ]);
        // The reader folded message 1 and passed over 2: it goes on from message 3.
        expect(shape(await collectBatches(log.follow(4, { afterStreamSeq: 2 }), 4))).toEqual([
          '3:1000@99',
          '4:4@1,5@1',
        ]);
        expect(shape(await collectBatches(log.follow(4, { afterStreamSeq: 3 }), 4))).toEqual([
          '4:4@1,5@1',
        ]);
        // Bounds say where the stream ends; the last entry is the last message's, whoever's.
        await setup.publishOutsider(testEntries(7, 7, 99));
        expect(await log.bounds()).toEqual({ firstSeq: 1, lastSeq: 7, lastStreamSeq: 5 });
        if (capabilities.trims && log.trimThrough !== undefined) {
          await log.trimThrough(2);
          await expect(
            collectBatches(log.follow(4, { afterStreamSeq: 1 }), 5),
          ).rejects.toBeInstanceOf(NotRetainedError);
          expect(shape(await collectBatches(log.follow(4, { afterStreamSeq: 2 }), 5))).toEqual([
            '3:1000@99',
            '4:4@1,5@1',
            '5:7@99',
          ]);
        }
      });
    }

    it('lets a closed follower end its iteration', async () => {
      const log = await makeLog();
      const follower = log.follow(1);
      const iteration = (async () => {
        let batches = 0;
        for await (const _batch of follower) batches++;
        return batches;
      })();
      follower.close();
      expect(await iteration).toBe(0);
    });
  });
}
