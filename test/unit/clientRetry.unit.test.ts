import { describe, expect, it } from 'vitest';
import {
  MemoryApiBus,
  type BusRequest,
  type ReplyFate,
} from '../../src/adapters/memory/memoryApiTransport.ts';
import { createApiHandler } from '../../src/api/handler.ts';
import { ApiError, encodeJson } from '../../src/api/wire.ts';
import { FoldingService, ManualClock } from '../fixtures/clientFixtures.ts';
import {
  createClient,
  objectExistsDetails,
  type ClientOptions,
  type FailoverEvent,
  type UnderstudyClient,
} from '../../src/client/index.ts';
import { getObject } from '../../src/domain/model/state.ts';
import type { ApiClientTransport, ApiListener } from '../../src/ports/apiTransport.ts';

interface Rig {
  readonly clock: ManualClock;
  readonly bus: MemoryApiBus;
  readonly service: FoldingService;
  readonly client: UnderstudyClient;
  readonly failovers: FailoverEvent[];
  listen(): Promise<ApiListener>;
}

async function rig(
  options: Partial<ClientOptions> = {},
  fate?: (r: BusRequest) => ReplyFate,
): Promise<Rig> {
  const clock = new ManualClock();
  const bus = new MemoryApiBus({ clock, ...(fate === undefined ? {} : { replyFate: fate }) });
  const service = new FoldingService();
  const failovers: FailoverEvent[] = [];
  const client = await createClient({
    cluster: 'c1',
    transport: bus.clientTransport('c1'),
    clock,
    random: () => 0.5,
    requestTimeoutMs: 500,
    deadlineMs: 5000,
    backoff: { initialMs: 100, maxMs: 400 },
    onFailover: (e) => failovers.push(e),
    ...options,
  });
  const listen = () => bus.serverTransport('c1').listen(createApiHandler(service));
  return { clock, bus, service, client, failovers, listen };
}

async function mounted(r: Rig): Promise<void> {
  for (const node of ['s1', 's2', 's3'])
    await r.clock.run(r.client.mountSegment(`${node}-seg`, node, 1 << 20));
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected a rejection');
}

describe('client over the in-memory transport', () => {
  it('every method reaches the service and answers typed results', async () => {
    const r = await rig();
    await r.listen();
    await mounted(r);
    const placement = await r.clock.run(r.client.putStart('k1', 100, 2));
    expect(placement).toMatchObject({ key: 'k1', size: 100, seq: 4 });
    expect(placement.replicas).toHaveLength(2);
    expect(await r.clock.run(r.client.exists('k1'))).toBe(true);
    expect(await r.clock.run(r.client.putEnd('k1'))).toEqual({ seq: 5 });
    const record = await r.clock.run(r.client.get('k1'));
    expect(record.replicas.every((x) => x.status === 'complete')).toBe(true);
    expect(await r.clock.run(r.client.remove('k1'))).toEqual({ seq: 6 });
    await r.clock.run(r.client.putStart('k2', 100, 1));
    expect(await r.clock.run(r.client.putRevoke('k2'))).toEqual({ seq: 8 });
    expect(await r.clock.run(r.client.exists('k2'))).toBe(false);
    const batch = await r.clock.run(
      r.client.putStartBatch([
        { key: 'b1', size: 10, replicaNum: 1 },
        { key: 'b1', size: 10, replicaNum: 1 },
      ]),
    );
    expect(batch[0]).toMatchObject({ ok: true, result: { key: 'b1' } });
    expect(batch[1]?.ok).toBe(false);
    if (batch[1]?.ok === false) {
      expect(batch[1].error).toBeInstanceOf(ApiError);
      expect(batch[1].error.code).toBe('OBJECT_EXISTS');
    }
    const ends = await r.clock.run(r.client.putEndBatch(['b1', 'missing']));
    expect(ends.map((e) => (e.ok ? 'ok' : e.error.code))).toEqual(['ok', 'OBJECT_NOT_FOUND']);
    const unmounted = await r.clock.run(r.client.unmountSegment('s3-seg'));
    expect(unmounted.seq).toBeGreaterThan(ends.length);
    expect(r.failovers).toEqual([]);
    await r.client.close();
  });

  it('retries NOT_PRIMARY with backoff, then succeeds and reports the failover', async () => {
    const r = await rig();
    await r.listen();
    await mounted(r);
    const seen: FailoverEvent[] = [];
    const off = r.client.on('failover', (e) => seen.push(e));
    r.service.notPrimaryLeft = 2;
    const before = r.bus.requestCount;
    const placement = await r.clock.run(r.client.putStart('k', 10, 1));
    expect(placement.key).toBe('k');
    expect(r.bus.requestCount - before).toBe(3);
    // random 0.5: waits 0.5 * 100 then 0.5 * 200
    const expected = { op: 'putStart', attempt: 3, code: 'NOT_PRIMARY', waitedMs: 150 };
    expect(r.failovers).toEqual([expected]);
    expect(seen).toEqual([expected]);
    off();
    r.service.notPrimaryLeft = 1;
    await r.clock.run(r.client.exists('k'));
    expect(seen).toHaveLength(1);
    expect(r.failovers).toHaveLength(2);
  });

  it('retries NO_RESPONDERS until a primary listens', async () => {
    const r = await rig();
    r.clock.setTimeout(() => void r.listen(), 1000);
    const ack = await r.clock.run(r.client.mountSegment('s', 'n', 1000));
    expect(ack).toEqual({ seq: 1 });
    expect(r.failovers).toHaveLength(1);
    expect(r.failovers[0]).toMatchObject({ code: 'NO_RESPONDERS', op: 'mountSegment' });
    expect(r.failovers[0]!.waitedMs).toBeGreaterThanOrEqual(1000);
  });

  it("a new primary's announcement ends a backoff at once", async () => {
    const r = await rig({ deadlineMs: 120_000, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    r.clock.setTimeout(() => void r.listen(), 1000);
    const started = r.clock.now();
    await r.clock.run(r.client.mountSegment('s', 'n', 1000));
    // Backoff alone would retry at 30 s (random 0.5 of 60 s).
    expect(r.clock.now() - started).toBe(1000);
    expect(r.failovers[0]).toMatchObject({ code: 'NO_RESPONDERS', attempt: 2, waitedMs: 1000 });
  });

  it('throws non-retryable errors at once, with the code, field and limit', async () => {
    const r = await rig();
    await r.listen();
    const before = r.bus.requestCount;
    const notFound = await rejection(r.clock.run(r.client.get('nope')));
    expect(notFound).toMatchObject({ code: 'OBJECT_NOT_FOUND', retryable: false, field: 'key' });
    const invalid = await rejection(r.clock.run(r.client.putStart('neg', -1, 1)));
    expect(invalid).toMatchObject({ code: 'INVALID_ARGUMENT', retryable: false, field: 'size' });
    expect(r.bus.requestCount - before).toBe(2);
    expect(r.failovers).toEqual([]);
  });

  it('gives up at the deadline with the last retryable code', async () => {
    const r = await rig({ deadlineMs: 3000 });
    await r.listen();
    r.service.notPrimaryLeft = Number.POSITIVE_INFINITY;
    const start = r.clock.now();
    const error = await rejection(r.clock.run(r.client.putEnd('k')));
    expect(error).toMatchObject({ code: 'NOT_PRIMARY', retryable: true });
    expect(error.message).toMatch(/gave up after \d+ attempt/);
    expect(r.clock.now() - start).toBeLessThanOrEqual(3000);
    expect(r.bus.requestCount).toBeGreaterThan(3);

    const lonely = await rig({ deadlineMs: 2000 });
    const noOne = await rejection(lonely.clock.run(lonely.client.exists('k')));
    expect(noOne).toMatchObject({ code: 'NO_RESPONDERS', retryable: true });
  });

  it('a putStart whose reply was lost is answered OBJECT_EXISTS with the committed placement', async () => {
    let dropNext = false;
    const r = await rig({}, () => {
      const fate: ReplyFate = dropNext ? { kind: 'drop' } : { kind: 'deliver' };
      dropNext = false;
      return fate;
    });
    await r.listen();
    await mounted(r);
    dropNext = true;
    const error = await rejection(r.clock.run(r.client.putStart('lost', 64, 2)));
    expect(error.code).toBe('OBJECT_EXISTS');
    const details = objectExistsDetails(error);
    expect(details).toEqual({
      replicas: getObject(r.service.state, 'lost')!.replicas,
      complete: false,
    });
    expect(details!.replicas).toHaveLength(2);
    expect(r.failovers).toEqual([{ op: 'putStart', attempt: 2, code: 'TIMEOUT', waitedMs: 550 }]);
  });

  it('a reply later than the request timeout counts as a timeout', async () => {
    let n = 0;
    const r = await rig({}, () => (++n === 1 ? { kind: 'delay', ms: 600 } : { kind: 'deliver' }));
    await r.listen();
    expect(await r.clock.run(r.client.exists('x'))).toBe(false);
    expect(r.failovers).toMatchObject([{ code: 'TIMEOUT', attempt: 2 }]);
    const quick = await rig({}, () => ({ kind: 'delay', ms: 100 }));
    await quick.listen();
    expect(await quick.clock.run(quick.client.exists('x'))).toBe(false);
    expect(quick.failovers).toEqual([]);
  });

  it('close ends pending retries with CLOSED, and later calls too', async () => {
    const r = await rig();
    const pending = r.clock.run(r.client.exists('k'));
    await new Promise((res) => setImmediate(res));
    await r.client.close();
    expect(await rejection(pending)).toMatchObject({ code: 'CLOSED', retryable: false });
    expect(await rejection(r.client.exists('k'))).toMatchObject({ code: 'CLOSED' });
  });

  it('refuses an oversize request before sending it', async () => {
    const r = await rig();
    await r.listen();
    const keys = Array.from({ length: 1000 }, (_, i) => `${i}-${'x'.repeat(1100)}`);
    const error = await rejection(r.client.putEndBatch(keys));
    expect(error).toMatchObject({ code: 'REQUEST_TOO_LARGE', retryable: false });
    expect(r.bus.requestCount).toBe(0);
  });

  it('a malformed reply is INTERNAL, not retried', async () => {
    let calls = 0;
    const transport: ApiClientTransport = {
      request: () => {
        calls++;
        return Promise.resolve(encodeJson({ ok: true, result: { seq: 'one' } }));
      },
      close: () => Promise.resolve(),
    };
    const client = await createClient({ cluster: 'c1', transport });
    expect(await rejection(client.putEnd('k'))).toMatchObject({
      code: 'INTERNAL',
      retryable: false,
    });
    expect(calls).toBe(1);
    await client.close();
  });

  it('rejects a cluster name that is not a subject token', async () => {
    await expect(
      createClient({ cluster: 'a.b', transport: new MemoryApiBus().clientTransport('x') }),
    ).rejects.toThrow(RangeError);
  });
});
