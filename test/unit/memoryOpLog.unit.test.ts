import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { OpLogUnavailableError, createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  NotRetainedError,
  type LogBatch,
} from '../../src/ports/opLog.ts';
import { collectUntil } from '../contract/opLog.contract.ts';
import { testEntries } from '../contract/entries.ts';
import { propRuns } from '../property/runs.ts';

/** The entry seqs of an iterator result (empty when it is done). */
const seqsOf = (result: IteratorResult<LogBatch>): number[] =>
  result.done === true ? [] : result.value.entries.map((entry) => entry.seq);

/** Lets queued microtasks and the promise chains they start run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('MemoryLogStore', () => {
  it('stores nothing during the append call: appends settle asynchronously', async () => {
    const store = new MemoryLogStore();
    const writer = createMemoryOpLog(store).openWriter({ expectedLastStreamSeq: 0 });
    const ack = writer.append(testEntries(1, 2));
    expect(store.messages()).toEqual([]);
    expect(await ack).toEqual({ streamSeq: 1, firstSeq: 1, lastSeq: 2 });
    expect(store.messages()).toHaveLength(1);
  });

  it('refuses entries that do not follow the last one', async () => {
    const store = new MemoryLogStore();
    const writer = createMemoryOpLog(store).openWriter({ expectedLastStreamSeq: 0 });
    await expect(writer.append(testEntries(2, 3))).rejects.toBeInstanceOf(AppendOrderError);
    await writer.append(testEntries(1, 1));
    await expect(writer.append([...testEntries(2, 2), ...testEntries(4, 4)])).rejects.toThrow(
      AppendOrderError,
    );
    expect(writer.fenced).toBe(false);
  });

  it('trims whole messages and fails followers that start (or fall) behind', async () => {
    const store = new MemoryLogStore();
    const log = createMemoryOpLog(store);
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    await writer.append(testEntries(1, 3));
    await writer.append(testEntries(4, 6));
    await writer.append(testEntries(7, 7));
    store.trimBefore(5);
    expect(await log.bounds()).toEqual({ firstSeq: 4, lastSeq: 7, lastStreamSeq: 3 });
    const behind = log.follow(3);
    const error = await behind[Symbol.asyncIterator]()
      .next()
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NotRetainedError);
    expect(error).toMatchObject({ requestedSeq: 3, firstRetainedSeq: 4 });
    expect((await collectUntil(log.follow(4), 7)).map((e) => e.seq)).toEqual([4, 5, 6, 7]);

    const slow = log.follow(4)[Symbol.asyncIterator]();
    expect(seqsOf(await slow.next())).toEqual([4, 5, 6]);
    store.trimBefore(8);
    await expect(slow.next()).rejects.toBeInstanceOf(NotRetainedError);
    expect(await log.bounds()).toEqual({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 3 });
    await expect(log.follow(7)[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(
      NotRetainedError,
    );
  });

  it('holds a partitioned node appends and stalls its follower until the heal', async () => {
    const store = new MemoryLogStore();
    const a = createMemoryOpLog(store, { nodeId: 'a' });
    const b = createMemoryOpLog(store, { nodeId: 'b' });
    const writer = a.openWriter({ expectedLastStreamSeq: 0 });
    await writer.append(testEntries(1, 1));
    const follower = b.follow(1)[Symbol.asyncIterator]();
    expect(seqsOf(await follower.next())).toEqual([1]);
    store.partition('a');
    store.partition('b');
    let acked = false;
    const pending = writer.append(testEntries(2, 2)).then((ack) => {
      acked = true;
      return ack;
    });
    let followed = false;
    const nextBatch = follower.next().then((batch) => {
      followed = true;
      return batch;
    });
    let bounded = false;
    void b.bounds().then(() => (bounded = true));
    await settle();
    expect(acked).toBe(false);
    expect(bounded).toBe(false);
    expect(store.messages()).toHaveLength(1);
    store.heal('a');
    expect((await pending).streamSeq).toBe(2);
    await settle();
    expect(followed).toBe(false);
    store.heal('b');
    expect(seqsOf(await nextBatch)).toEqual([2]);
    await settle();
    expect(bounded).toBe(true);
  });

  it('times a partitioned writer out as ambiguous, for good, when given a clock', async () => {
    const clock = new SimClock();
    const store = new MemoryLogStore();
    const log = createMemoryOpLog(store, { nodeId: 'a', clock, timeoutMs: 1_000 });
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    store.partition('a');
    const failure = (promise: Promise<unknown>): Promise<unknown> =>
      promise.then(
        () => undefined,
        (err: unknown) => err,
      );
    const first = failure(writer.append(testEntries(1, 1)));
    const second = failure(writer.append(testEntries(2, 3)));
    const bounds = failure(log.bounds());
    await clock.advanceAsync(1_000);
    expect(await first).toBeInstanceOf(AmbiguousAppendError);
    expect(await second).toMatchObject({ name: 'AmbiguousAppendError', firstSeq: 2 });
    expect(await bounds).toBeInstanceOf(OpLogUnavailableError);
    store.heal('a');
    await expect(writer.append(testEntries(1, 1))).rejects.toBeInstanceOf(AmbiguousAppendError);
    await settle();
    expect(store.messages()).toEqual([]);
    expect(writer.fenced).toBe(false);
  });

  it('stores appends whose acks are lost, and times them out as ambiguous', async () => {
    const clock = new SimClock();
    const store = new MemoryLogStore();
    const log = createMemoryOpLog(store, { nodeId: 'a', clock, timeoutMs: 1_000 });
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    await writer.append(testEntries(1, 1));
    store.dropAcks('a');
    const outcome = (promise: Promise<unknown>): Promise<unknown> =>
      promise.then(
        (ack) => ack,
        (err: unknown) => err,
      );
    const first = outcome(writer.append(testEntries(2, 2)));
    const second = outcome(writer.append(testEntries(3, 4)));
    await clock.advanceAsync(10);
    expect(store.entries().map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    await clock.advanceAsync(1_000);
    expect(await first).toMatchObject({ name: 'AmbiguousAppendError', firstSeq: 2, lastSeq: 2 });
    expect(await second).toMatchObject({ name: 'AmbiguousAppendError', firstSeq: 3, lastSeq: 4 });
    store.heal('a');
    await expect(writer.append(testEntries(5, 5))).rejects.toBeInstanceOf(AmbiguousAppendError);
    // Another writer that reads the truth back goes on from there.
    const bounds = await log.bounds();
    expect(bounds).toEqual({ firstSeq: 1, lastSeq: 4, lastStreamSeq: 3 });
    const next = log.openWriter({ expectedLastStreamSeq: bounds.lastStreamSeq });
    expect(await next.append(testEntries(5, 5))).toEqual({ streamSeq: 4, firstSeq: 5, lastSeq: 5 });
  });

  it('whatever the interleaving, exactly one of two racing writers extends the log', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        async (s, countA, countB) => {
          const store = new MemoryLogStore();
          const schedule = (step: () => void): void => {
            void s.schedule(Promise.resolve()).then(step);
          };
          const writers = [countA, countB].map((count) => ({
            count,
            writer: createMemoryOpLog(store, { schedule }).openWriter({
              expectedLastStreamSeq: 0,
            }),
          }));
          const results = writers.map(({ count, writer }) =>
            Promise.allSettled(
              Array.from({ length: count }, (_, i) => writer.append(testEntries(i + 1, i + 1))),
            ),
          );
          const settled = await s.waitFor(Promise.all(results));
          const winners = settled.filter((r) => r[0]?.status === 'fulfilled');
          expect(winners).toHaveLength(1);
          for (const outcome of settled) {
            const ok = outcome.map((r) => r.status === 'fulfilled');
            // A writer's appends succeed as a prefix; after the first rejection all are fenced.
            expect(ok).toEqual([...ok].sort((x, y) => Number(y) - Number(x)));
            for (const r of outcome) {
              if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(FencedError);
            }
          }
          const entries = store.entries().map((e) => e.seq);
          expect(entries).toEqual(entries.map((_, i) => i + 1));
        },
      ),
      { numRuns: propRuns() },
    );
  });

  it('reads an overdue append back once the partition heals within the window, and close() waits for it', async () => {
    const clock = new SimClock();
    const store = new MemoryLogStore();
    const log = createMemoryOpLog(store, {
      nodeId: 'a',
      clock,
      timeoutMs: 1_000,
      resolveTimeoutMs: 3_000,
      latencyMs: () => 5,
    });
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    const first = writer.append(testEntries(1, 1));
    await clock.advanceAsync(4);
    expect(store.messages()).toEqual([]);
    await clock.advanceAsync(1);
    expect(store.entries().map((e) => e.seq)).toEqual([1]);
    // The acknowledgement takes as long to come back.
    await clock.advanceAsync(5);
    expect(await first).toEqual({ streamSeq: 1, firstSeq: 1, lastSeq: 1 });
    store.partition('a');
    const second = writer.append(testEntries(2, 2));
    let closed = false;
    void writer.close().then(() => {
      closed = true;
    });
    await clock.advanceAsync(2_000);
    expect(closed).toBe(false);
    store.heal('a');
    await clock.advanceAsync(20);
    expect(await second).toEqual({ streamSeq: 2, firstSeq: 2, lastSeq: 2 });
    expect(closed).toBe(true);
  });

  it('gives an overdue append up as ambiguous when the window passes', async () => {
    const clock = new SimClock();
    const store = new MemoryLogStore();
    const log = createMemoryOpLog(store, {
      nodeId: 'a',
      clock,
      timeoutMs: 1_000,
      resolveTimeoutMs: 3_000,
    });
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    store.dropAcks('a');
    const outcome = writer.append(testEntries(1, 1)).then(
      () => 'stored',
      (err: unknown) => err,
    );
    await clock.advanceAsync(3_999);
    expect(store.entries().map((e) => e.seq)).toEqual([1]);
    await clock.advanceAsync(1);
    expect(await outcome).toBeInstanceOf(AmbiguousAppendError);
  });

  it('a stalled follower stops delivering without ending; a new one reads on', async () => {
    const store = new MemoryLogStore();
    const log = createMemoryOpLog(store, { nodeId: 'a' });
    const writer = log.openWriter({ expectedLastStreamSeq: 0 });
    await writer.append(testEntries(1, 1));
    const stalled = log.follow(1)[Symbol.asyncIterator]();
    expect(seqsOf(await stalled.next())).toEqual([1]);
    store.stallFollowers('a');
    let moved = false;
    void stalled.next().then(() => {
      moved = true;
    });
    await writer.append(testEntries(2, 2));
    await settle();
    expect(moved).toBe(false);
    const fresh = log.follow(2)[Symbol.asyncIterator]();
    expect(seqsOf(await fresh.next())).toEqual([2]);
  });
});
