import { describe, expect, it } from 'vitest';
import { MemoryApiBus, type BusRequest } from '../../src/adapters/memory/memoryApiTransport.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { createApiHandler } from '../../src/api/handler.ts';
import { ApiError } from '../../src/api/wire.ts';
import type { WriteBatchRequest } from '../../src/api/writeBatch.ts';
import { type ClientOptions } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import type { AppendAck, OpLogWriter } from '../../src/ports/opLog.ts';
import { metadataPipeline, metadataReadLeases, metadataStore } from '../fixtures/metadataNode.ts';

/** A writer that acknowledges at once, or holds every append while `held` until released. */
class GatedWriter implements OpLogWriter {
  held = false;
  readonly fenced = false;
  readonly appended: OpLogEntry[] = [];
  #waiting: (() => void)[] = [];
  #streamSeq = 0;

  append(entries: readonly OpLogEntry[]): Promise<AppendAck> {
    const ack = (): AppendAck => {
      this.appended.push(...entries);
      return {
        streamSeq: ++this.#streamSeq,
        firstSeq: entries[0]!.seq,
        lastSeq: entries[entries.length - 1]!.seq,
      };
    };
    if (!this.held) return Promise.resolve(ack());
    return new Promise((resolve) => this.#waiting.push(() => resolve(ack())));
  }

  release(): void {
    this.held = false;
    for (const go of this.#waiting.splice(0)) go();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Lets queued microtasks and the promise chains they start run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

async function rig(options: Partial<ClientOptions> = {}) {
  const clock = new SimClock(1_000);
  const requests: BusRequest[] = [];
  let dropReplyOf: ((r: BusRequest) => boolean) | undefined;
  const bus = new MemoryApiBus({
    clock,
    replyFate: (r) => {
      requests.push(r);
      return dropReplyOf?.(r) === true ? { kind: 'drop' } : { kind: 'deliver' };
    },
  });
  const store = metadataStore();
  const writer = new GatedWriter();
  const { service } = metadataPipeline({
    nodeId: 'n1',
    epoch: 1,
    store,
    writer,
    lease: { live: () => true },
    clock,
    leases: metadataReadLeases(clock, 5000),
    evictionIntervalMs: 0,
    onFault: () => undefined,
  });
  await bus.serverTransport('c1').listen(createApiHandler(service));
  const client = await createClient({
    cluster: 'c1',
    transport: bus.clientTransport('c1'),
    clock,
    random: () => 0.5,
    requestTimeoutMs: 500,
    deadlineMs: 5000,
    backoff: { initialMs: 100, maxMs: 400 },
    sessionId: 'cd'.repeat(16),
    ...options,
  });
  for (const s of ['s1', 's2']) {
    const mounted = client.mountSegment(`${s}-seg`, s, 1 << 20);
    await settle();
    await mounted;
  }
  requests.length = 0;
  const setDrop = (hook: typeof dropReplyOf): void => {
    dropReplyOf = hook;
  };
  return { clock, bus, requests, store, writer, client, setDrop };
}

const decoder = new TextDecoder();
const bodyOf = (r: BusRequest): unknown => JSON.parse(decoder.decode(r.body));
const itemsOf = (r: BusRequest): WriteBatchRequest['items'] =>
  (bodyOf(r) as WriteBatchRequest).items;

/** Settles `promise` into an outcome at once, so a rejection is never left unhandled. */
function outcome<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return promise.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason }),
  );
}

/** The ApiError `promise` rejects with. */
async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const settled = await outcome(promise);
  if (settled.status === 'fulfilled') throw new Error('expected a rejection');
  expect(settled.reason).toBeInstanceOf(ApiError);
  return settled.reason as ApiError;
}

describe('client coalescing', () => {
  it('an idle client sends a call at once, alone, as the single-op request', async () => {
    const r = await rig();
    const placement = r.client.putStart('k', 64, 1);
    await settle();
    // No time passed: nothing waited for a timer.
    expect(r.requests.map((q) => q.op)).toEqual(['putStart']);
    expect(bodyOf(r.requests[0]!)).toEqual({
      key: 'k',
      size: 64,
      replicaNum: 1,
      session: { id: r.client.sessionId, oldestPending: 3, requestNo: 3 },
    });
    expect(await placement).toMatchObject({ key: 'k', size: 64, seq: 3 });
    expect(r.clock.now()).toBe(1_000);
  });

  it('calls made while a request is in flight go out as one writeBatch, each with its own number and result', async () => {
    const r = await rig({ coalesce: { maxInFlight: 1 } });
    r.writer.held = true;
    const first = r.client.putStart('a', 64, 1);
    await settle();
    const calls = [
      r.client.putStart('b', 64, 2),
      r.client.putStart('a', 64, 1), // exists by then: its own OBJECT_EXISTS
      r.client.putEnd('a'),
      r.client.remove('missing'), // its own OBJECT_NOT_FOUND
      r.client.mountSegment('s3-seg', 's3', 1 << 20),
    ].map(outcome);
    await settle();
    expect(r.requests.map((q) => q.op)).toEqual(['putStart']);
    r.writer.release();
    await settle();
    expect(r.requests.map((q) => q.op)).toEqual(['putStart', 'writeBatch']);
    const batch = r.requests[1]!;
    expect(itemsOf(batch)).toEqual([
      { op: 'putStart', key: 'b', size: 64, replicaNum: 2, requestNo: 4 },
      { op: 'putStart', key: 'a', size: 64, replicaNum: 1, requestNo: 5 },
      { op: 'putEnd', key: 'a', requestNo: 6 },
      { op: 'remove', key: 'missing', requestNo: 7 },
      { op: 'mountSegment', segmentId: 's3-seg', nodeId: 's3', size: 1 << 20, requestNo: 8 },
    ]);
    expect((bodyOf(batch) as WriteBatchRequest).session).toEqual({
      id: r.client.sessionId,
      oldestPending: 4,
    });
    expect(await first).toMatchObject({ key: 'a', seq: 3 });
    const [b, again, end, missing, mount] = await Promise.all(calls);
    expect(b).toMatchObject({ status: 'fulfilled', value: { key: 'b', seq: 4 } });
    expect(again).toMatchObject({ status: 'rejected', reason: { code: 'OBJECT_EXISTS' } });
    expect(end).toMatchObject({ status: 'fulfilled', value: { seq: 5 } });
    expect(missing).toMatchObject({ status: 'rejected', reason: { code: 'OBJECT_NOT_FOUND' } });
    expect(mount).toMatchObject({ status: 'fulfilled', value: { seq: 6 } });
    // One append for the whole batch.
    expect(r.writer.appended.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a request carries at most maxItems calls and about maxBytes of them', async () => {
    const r = await rig({ coalesce: { maxInFlight: 1, maxItems: 2 } });
    r.writer.held = true;
    const first = r.client.putStart('k0', 8, 1);
    await settle();
    const rest = [1, 2, 3, 4, 5].map((i) => r.client.putStart(`k${i}`, 8, 1));
    await settle();
    for (let round = 0; round < 4; round++) {
      r.writer.release();
      r.writer.held = true;
      await settle();
    }
    r.writer.release();
    await Promise.all([first, ...rest]);
    expect(r.requests.map((q) => (q.op === 'writeBatch' ? itemsOf(q).length : q.op))).toEqual([
      'putStart',
      2,
      2,
      'putStart',
    ]);

    // Items of about 210 bytes (a 2-byte character 75 times in each key): the envelope and two
    // of them fit in 600 bytes, three do not.
    const small = await rig({ coalesce: { maxInFlight: 1, maxBytes: 600 } });
    small.writer.held = true;
    const long = (i: number): string => `${i}-${'\u00e9'.repeat(75)}`;
    const waiting = [small.client.putStart(long(0), 8, 1)];
    await settle();
    for (let i = 1; i <= 5; i++) waiting.push(small.client.putStart(long(i), 8, 1));
    const done = Promise.all(waiting);
    await settle();
    for (let round = 0; round < 4; round++) {
      small.writer.release();
      small.writer.held = true;
      await settle();
    }
    small.writer.release();
    await done;
    const batches = small.requests.filter((q) => q.op === 'writeBatch');
    expect(batches.length).toBe(2);
    for (const q of batches) expect(q.body.byteLength).toBeLessThanOrEqual(600);
    expect(small.requests.map((q) => (q.op === 'writeBatch' ? itemsOf(q).length : 1))).toEqual([
      1, 2, 2, 1,
    ]);
    // Each item exactly as the call made it.
    expect(
      batches.flatMap((q) => itemsOf(q).map((item) => ('key' in item ? item.key : ''))),
    ).toEqual([1, 2, 3, 4].map(long));
  });

  it('with maxInFlight 2, two requests are in flight before calls queue', async () => {
    const r = await rig({ coalesce: { maxInFlight: 2 } });
    r.writer.held = true;
    const a = r.client.putStart('a', 8, 1);
    await settle();
    const b = r.client.putStart('b', 8, 1);
    await settle();
    const queued = [r.client.putStart('c', 8, 1), r.client.putStart('d', 8, 1)];
    await settle();
    expect(r.requests.map((q) => q.op)).toEqual(['putStart', 'putStart']);
    r.writer.release();
    await Promise.all([a, b, ...queued]);
    expect(r.requests.map((q) => q.op)).toEqual(['putStart', 'putStart', 'writeBatch']);
  });

  it('a batch whose reply was lost is retried with the same numbers: each item applied once, each caller its original result', async () => {
    const r = await rig({ coalesce: { maxInFlight: 1 } });
    r.writer.held = true;
    const first = r.client.putStart('a', 64, 1);
    await settle();
    const calls = [r.client.putStart('b', 64, 1), r.client.putStart('c', 64, 2)];
    await settle();
    let dropped = 0;
    r.setDrop((q) => q.op === 'writeBatch' && dropped++ === 0);
    r.writer.release();
    await settle();
    expect(r.requests.map((q) => q.op)).toEqual(['putStart', 'writeBatch']);
    const appliedBefore = r.store.appliedSeq;
    expect(appliedBefore).toBe(5); // the batch was applied; its reply is lost
    await r.clock.advanceAsync(500); // the attempt times out
    await r.clock.advanceAsync(50); // backoff: 0.5 * 100 ms
    expect(r.requests.map((q) => q.op)).toEqual(['putStart', 'writeBatch', 'writeBatch']);
    expect(itemsOf(r.requests[2]!)).toEqual(itemsOf(r.requests[1]!));
    await first;
    const [b, c] = await Promise.all(calls);
    expect(b).toMatchObject({ key: 'b', seq: 4 });
    expect(c).toMatchObject({ key: 'c', seq: 5 });
    expect(c!.replicas).toHaveLength(2);
    // Nothing was applied twice.
    expect(r.store.appliedSeq).toBe(appliedBefore);
    expect(r.writer.appended.filter((e) => e.op === 'PUT_START').map((e) => e.key)).toEqual([
      'a',
      'b',
      'c',
    ]);
  });

  it('a malformed call fails alone, with its own field; a failed request fails each of its callers', async () => {
    const r = await rig({ coalesce: { maxInFlight: 1 } });
    r.writer.held = true;
    const first = r.client.putStart('a', 64, 1);
    await settle();
    const good = outcome(r.client.putEnd('a'));
    const bad = rejection(r.client.putEnd(7 as unknown as string));
    await settle();
    r.writer.release();
    expect(await good).toMatchObject({ status: 'fulfilled', value: { seq: 4 } });
    const error = await bad;
    expect(error).toMatchObject({ code: 'BAD_REQUEST', field: 'key' });
    expect(error.message).not.toContain('items.');
    await first;

    // Every reply lost: each caller of the batch gets its own TIMEOUT by its deadline.
    r.setDrop(() => true);
    r.writer.held = true;
    const lost = rejection(r.client.putStart('x', 8, 1));
    await settle();
    const batched = [r.client.putStart('y', 8, 1), r.client.putStart('z', 8, 1)].map(rejection);
    await settle();
    r.writer.release();
    await r.clock.advanceAsync(3_000); // the single call's attempts time out; the batch goes
    expect(r.requests.filter((q) => q.op === 'writeBatch').length).toBeGreaterThan(0);
    await r.clock.advanceAsync(5_000);
    const errors = await Promise.all([lost, ...batched]);
    for (const e of errors) expect(e).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(new Set(errors).size).toBe(3);
  });

  it('a call still queued at its deadline fails with TIMEOUT and is never sent', async () => {
    // Two calls of one tick, one per request: the second waits behind the first, whose every
    // reply is lost until their common deadline.
    const r = await rig({ coalesce: { maxInFlight: 1, maxItems: 1 } });
    r.setDrop(() => true);
    const first = rejection(r.client.putStart('a', 8, 1));
    const queued = rejection(r.client.putStart('b', 8, 1));
    await r.clock.advanceAsync(6_000);
    expect(await first).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(await queued).toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect((await queued).message).toContain('0 attempts');
    expect(r.requests.length).toBeGreaterThan(1);
    for (const q of r.requests) expect(bodyOf(q)).toMatchObject({ key: 'a' });
  });

  it('close fails the queued calls at once and the calls in flight when they end', async () => {
    const r = await rig({ coalesce: { maxInFlight: 1 } });
    r.writer.held = true;
    const inFlight = rejection(r.client.putStart('p', 8, 1));
    await settle();
    const queued = [r.client.putStart('q', 8, 1), r.client.remove('p')].map(rejection);
    await settle();
    await r.client.close();
    for (const e of await Promise.all(queued)) expect(e).toMatchObject({ code: 'CLOSED' });
    r.writer.release();
    expect(await inFlight).toMatchObject({ code: 'CLOSED' });
    expect(await rejection(r.client.putStart('later', 8, 1))).toMatchObject({ code: 'CLOSED' });
    expect(r.requests.map((q) => q.op)).toEqual(['putStart']);
  });

  it('coalesce: false sends every call as its own request', async () => {
    const r = await rig({ coalesce: false });
    r.writer.held = true;
    const calls = [r.client.putStart('a', 8, 1), r.client.putStart('b', 8, 1)];
    await settle();
    expect(r.requests.map((q) => q.op)).toEqual(['putStart', 'putStart']);
    r.writer.release();
    await Promise.all(calls);
  });
});
