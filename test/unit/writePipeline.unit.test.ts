import { describe, expect, it } from 'vitest';
import { NotPrimaryError } from '../../src/ports/metadataService.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { DomainError } from '../../src/domain/model/errors.ts';
import { getObject } from '../../src/domain/model/state.ts';
import type { Clock, TimerHandle } from '../../src/ports/clock.ts';
import { FencedError, type AppendAck, type OpLogWriter } from '../../src/ports/opLog.ts';
import { deferred, type Deferred } from '../../src/node/deferred.ts';
import { NodeLease } from '../../src/node/state/nodeLease.ts';
import { metadataPipeline, metadataReadLeases, metadataStore } from '../fixtures/metadataNode.ts';

/** A writer whose appends settle only when the test says so. */
class HeldWriter implements OpLogWriter {
  fenced = false;
  readonly pending: Array<{ entries: readonly OpLogEntry[]; ack: Deferred<AppendAck> }> = [];
  #streamSeq = 0;
  append(entries: readonly OpLogEntry[]): Promise<AppendAck> {
    const ack = deferred<AppendAck>();
    this.pending.push({ entries, ack });
    return ack.promise;
  }
  ackNext(): void {
    const next = this.pending.shift()!;
    this.#streamSeq++;
    next.ack.resolve({
      streamSeq: this.#streamSeq,
      firstSeq: next.entries[0]!.seq,
      lastSeq: next.entries[next.entries.length - 1]!.seq,
    });
  }
  rejectAll(): void {
    this.fenced = true;
    for (const p of this.pending.splice(0)) p.ack.reject(new FencedError(this.#streamSeq, 99));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const clock = (): Clock & { t: number } => {
  const c = {
    t: 1_000,
    monotonicNow: () => c.t,
    wallNow: () => 1_700_000_000_000 + c.t,
    setTimeout: (): TimerHandle => ({ clear: () => undefined }),
  };
  return c;
};

function setup(deadline = () => Number.MAX_SAFE_INTEGER) {
  const c = clock();
  const store = metadataStore();
  const writer = new HeldWriter();
  const faults: string[] = [];
  const { pipeline, service } = metadataPipeline({
    nodeId: 'n1',
    epoch: 7,
    store,
    writer,
    lease: new NodeLease({ leaseDeadline: deadline, onLeaseLost: () => () => undefined }, c),
    clock: c,
    leases: metadataReadLeases(c, 5000),
    evictionIntervalMs: 0,
    onFault: (reason) => faults.push(reason),
  });
  return { c, store, writer, pipeline, service, faults };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('WritePipeline', () => {
  it('answers only after the append is acknowledged, and folds in seq order', async () => {
    const { store, writer, pipeline } = setup();
    let answered = 0;
    const a = pipeline
      .execute({ type: 'mountSegment', segmentId: 'a', nodeId: 's1', size: 1 << 20 })
      .then((r) => {
        answered++;
        return r;
      });
    const b = pipeline.execute({
      type: 'mountSegment',
      segmentId: 'b',
      nodeId: 's2',
      size: 1 << 20,
    });
    await flush();
    expect(answered).toBe(0);
    expect(store.appliedSeq).toBe(0);
    expect(writer.pending).toHaveLength(2);
    writer.ackNext();
    expect((await a).seq).toBe(1);
    expect(store.appliedSeq).toBe(1);
    writer.ackNext();
    expect((await b).seq).toBe(2);
    expect(store.appliedSeq).toBe(2);
  });

  /** A pipeline with two storage nodes mounted, so a putStart of 2 replicas fits. */
  async function mounted() {
    const t = setup();
    const mounts = ['s1', 's2'].map((n) =>
      t.pipeline.execute({ type: 'mountSegment', segmentId: `${n}-a`, nodeId: n, size: 1 << 20 }),
    );
    t.writer.ackNext();
    t.writer.ackNext();
    await Promise.all(mounts);
    return t;
  }

  const put = { type: 'putStart', key: 'k', size: 100, replicaNum: 2 } as const;
  const session = 'c0ffee00'.repeat(4);
  const origin = (requestNo: number, oldestPending = requestNo) => ({
    sessionId: session,
    requestNo,
    oldestPending,
  });

  it('decides against the speculative state, but answers a refusal only once what it was judged against is committed', async () => {
    const { writer, pipeline } = await mounted();
    const first = pipeline.execute(put);
    let refused: unknown;
    const second = pipeline.execute(put).catch((err: unknown) => {
      refused = err;
    });
    await flush();
    // The putStart of k is still in flight: its refusal must wait for it.
    expect(refused).toBeUndefined();
    expect(writer.pending).toHaveLength(1);
    writer.ackNext();
    const placed = await first;
    await second;
    expect(refused).toMatchObject({ code: 'OBJECT_EXISTS' });
    expect(placed.replicas).toHaveLength(2);
  });

  it('a refusal judged against an append that then fails is answered NOT_PRIMARY, never the refusal', async () => {
    const { writer, pipeline } = await mounted();
    const first = pipeline.execute(put);
    const second = pipeline.execute(put);
    await flush();
    writer.rejectAll();
    await expect(first).rejects.toBeInstanceOf(NotPrimaryError);
    await expect(second).rejects.toBeInstanceOf(NotPrimaryError);
  });

  it('a retried request gets its original result and is not applied twice, in flight or committed', async () => {
    const { store, writer, pipeline } = await mounted();
    const first = pipeline.execute(put, origin(1));
    const retryInFlight = pipeline.execute(put, origin(1));
    await flush();
    expect(writer.pending).toHaveLength(1);
    writer.ackNext();
    const a = await first;
    const b = await retryInFlight;
    expect(b).toEqual(a);
    const afterCommit = await pipeline.execute(put, origin(1));
    expect(afterCommit).toEqual(a);
    expect(writer.pending).toHaveLength(0);
    expect(store.appliedSeq).toBe(3);
    // A retried remove after another client re-created the key does not remove it again.
    const end = pipeline.execute({ type: 'putEnd', key: 'k' }, origin(2));
    writer.ackNext();
    await end;
    const removed = pipeline.execute({ type: 'remove', key: 'k' }, origin(3));
    writer.ackNext();
    const removal = await removed;
    const other = pipeline.execute(put);
    writer.ackNext();
    await other;
    expect(await pipeline.execute({ type: 'remove', key: 'k' }, origin(3))).toEqual(removal);
    expect(getObject(store.state, 'k')).toBeDefined();
  });

  it('a request below the oldest pending one is refused, never applied; a number reused for another command is a bad request', async () => {
    const { writer, pipeline } = await mounted();
    const first = pipeline.execute(put, origin(5, 5));
    writer.ackNext();
    await first;
    const later = pipeline.execute({ type: 'putEnd', key: 'k' }, origin(6, 6));
    writer.ackNext();
    await later;
    await expect(
      pipeline.execute({ type: 'putRevoke', key: 'k' }, origin(5, 5)),
    ).rejects.toMatchObject({ code: 'REQUEST_EXPIRED' });
    await expect(
      pipeline.execute({ type: 'remove', key: 'k' }, origin(6, 6)),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'requestNo' });
    await expect(
      pipeline.execute(put, { sessionId: 'not-hex', requestNo: 1, oldestPending: 1 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'sessionId' });
    expect(writer.pending).toHaveLength(0);
  });

  it('on a fence rejection every waiting client gets a retryable NOT_PRIMARY and nothing uncommitted is kept', async () => {
    const { store, writer, pipeline, faults } = setup();
    const one = pipeline.execute({
      type: 'mountSegment',
      segmentId: 'a',
      nodeId: 's1',
      size: 1 << 20,
    });
    writer.ackNext();
    await one;
    const waiting = [
      pipeline.execute({ type: 'mountSegment', segmentId: 'b', nodeId: 's1', size: 1 << 20 }),
      pipeline.execute({ type: 'mountSegment', segmentId: 'c', nodeId: 's1', size: 1 << 20 }),
    ];
    await flush();
    writer.rejectAll();
    for (const w of waiting) await expect(w).rejects.toBeInstanceOf(NotPrimaryError);
    expect(faults).toHaveLength(1);
    expect(store.appliedSeq).toBe(1);
    await expect(
      pipeline.execute({ type: 'mountSegment', segmentId: 'd', nodeId: 's1', size: 1 << 20 }),
    ).rejects.toMatchObject({ retryable: true, code: 'NOT_PRIMARY' });
  });

  it('refuses to take or answer anything once the lease deadline has passed', async () => {
    let deadline = 2_000;
    const { c, writer, pipeline, service, faults } = setup(() => deadline);
    const pending = pipeline.execute({
      type: 'mountSegment',
      segmentId: 'a',
      nodeId: 's1',
      size: 1 << 20,
    });
    await flush();
    c.t = 2_500; // e.g. the process was paused past its deadline
    writer.ackNext();
    await expect(pending).rejects.toBeInstanceOf(NotPrimaryError);
    deadline = 10_000;
    await expect(service.get('a')).rejects.toBeInstanceOf(NotPrimaryError);
    expect(faults).toEqual(['lease deadline passed']);
  });

  it('a refused command changes nothing and is not retryable', async () => {
    const { store, pipeline, writer } = setup();
    const before = store.state;
    await expect(pipeline.execute({ type: 'putEnd', key: 'missing' })).rejects.toBeInstanceOf(
      DomainError,
    );
    expect(writer.pending).toHaveLength(0);
    expect(store.state).toBe(before);
    expect(getObject(store.state, 'missing')).toBeUndefined();
  });
});
