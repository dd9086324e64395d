import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNatsApiClientTransport,
  createNatsApiServerTransport,
} from '../../src/adapters/nats/natsApiTransport.ts';
import { createApiHandler } from '../../src/api/handler.ts';
import {
  NotPrimaryError,
  type BatchItemResult,
  type ExecuteResult,
  type MetadataService,
} from '../../src/ports/metadataService.ts';
import { apiSubject } from '../../src/api/subjects.ts';
import { ApiError, decodeJson } from '../../src/api/wire.ts';
import { createClient, type FailoverEvent } from '../../src/client/index.ts';
import type { Command, ObjectRecord } from '../../src/domain/model/types.ts';
import {
  NoRespondersError,
  RequestTooLargeError,
  TransportClosedError,
  TransportTimeoutError,
} from '../../src/ports/apiTransport.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';

const MAX_PAYLOAD = 64 * 1024;

/** Answers from a map; `hold` makes `exists` wait until released. */
class MapService implements MetadataService {
  readonly records = new Map<string, ObjectRecord>();
  seq = 0;
  notPrimary = false;
  #held: Array<() => void> = [];
  hold = false;

  execute(command: Command): Promise<ExecuteResult> {
    if (this.notPrimary) return Promise.reject(new NotPrimaryError('fenced'));
    const seq = ++this.seq;
    if (command.type === 'putStart') {
      const replicas = [
        {
          segmentId: 's',
          nodeId: 'n',
          offset: 0,
          length: command.size,
          status: 'processing' as const,
        },
      ];
      this.records.set(command.key, {
        key: command.key,
        size: command.size,
        replicas,
        lastSeq: seq,
      });
      return Promise.resolve({ seq, replicas });
    }
    return Promise.resolve({ seq });
  }
  async executeBatch(commands: readonly Command[]): Promise<BatchItemResult[]> {
    const out: BatchItemResult[] = [];
    for (const c of commands) out.push({ ok: true, result: await this.execute(c) });
    return out;
  }
  get(key: string): Promise<ObjectRecord> {
    const r = this.records.get(key);
    return r === undefined ? Promise.reject(new Error('unexpected')) : Promise.resolve(r);
  }
  exists(key: string): Promise<boolean> {
    if (!this.hold) return Promise.resolve(this.records.has(key));
    return new Promise((resolve) => this.#held.push(() => resolve(this.records.has(key))));
  }
  release(): void {
    this.hold = false;
    for (const r of this.#held.splice(0)) r();
  }
}

describe('the client API over a real nats-server', () => {
  let nats: NatsServerHandle;
  const connections: NatsConnection[] = [];
  const conn = async (): Promise<NatsConnection> => {
    const nc = await connect({ servers: nats.url });
    connections.push(nc);
    return nc;
  };

  beforeAll(async () => {
    nats = await startNats({ jetstream: false, config: `max_payload: ${MAX_PAYLOAD}\n` });
  });
  afterAll(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await nats?.[Symbol.asyncDispose]();
  });

  it('request/reply through the client; bad bytes get BAD_REQUEST; close stops serving', async () => {
    const service = new MapService();
    const listener = await createNatsApiServerTransport({ nc: await conn(), cluster: 'rr' }).listen(
      createApiHandler(service),
    );
    // One attempt per call (the first backoff outlasts the deadline): under load a retry late in
    // the deadline gets only milliseconds and times out, which would hide NO_RESPONDERS.
    await using client = await createClient({
      servers: nats.url,
      cluster: 'rr',
      deadlineMs: 1500,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      random: () => 0.9,
    });
    const placement = await client.putStart('k', 10, 1);
    expect(placement).toMatchObject({ key: 'k', size: 10, seq: 1 });
    expect(await client.get('k')).toMatchObject({ key: 'k', lastSeq: 1 });
    expect(await client.exists('k')).toBe(true);
    expect(await client.putEndBatch(['k', 'k'])).toEqual([
      { ok: true, result: { seq: 2 } },
      { ok: true, result: { seq: 3 } },
    ]);

    const raw = await conn();
    const reply = await raw.request(
      apiSubject('rr', 'putStart'),
      new Uint8Array([0xff, 0x00, 0x13]),
      {
        timeout: 10_000,
      },
    );
    expect(decodeJson(reply.data)).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    const unknown = await raw.request('understudy.rr.api.frobnicate', '{}', { timeout: 10_000 });
    expect(decodeJson(unknown.data)).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST', field: 'op' },
    });

    await listener.close();
    await listener.close();
    const error = await client.exists('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: 'NO_RESPONDERS', retryable: true });
  });

  it('maps no responders, timeouts, oversize requests and a closed transport', async () => {
    const service = new MapService();
    const listener = await createNatsApiServerTransport({
      nc: await conn(),
      cluster: 'maps',
    }).listen(createApiHandler(service));
    const transport = createNatsApiClientTransport({ nc: await conn(), cluster: 'maps' });
    const nobody = createNatsApiClientTransport({ nc: await conn(), cluster: 'nobody' });
    await expect(
      nobody.request('exists', new TextEncoder().encode('{"key":"k"}'), 10_000),
    ).rejects.toBeInstanceOf(NoRespondersError);

    service.hold = true;
    const started = Date.now();
    await expect(
      transport.request('exists', new TextEncoder().encode('{"key":"k"}'), 300),
    ).rejects.toBeInstanceOf(TransportTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    // close waits for the held request to be answered
    const closing = listener.close();
    service.release();
    await closing;

    const again = await createNatsApiServerTransport({ nc: await conn(), cluster: 'maps' }).listen(
      createApiHandler(service),
    );
    const big = new Uint8Array(MAX_PAYLOAD + 1).fill(0x20);
    const tooLarge = await transport.request('putEnd', big, 10_000).catch((e: unknown) => e);
    expect(tooLarge).toBeInstanceOf(RequestTooLargeError);
    expect(tooLarge).toMatchObject({ limit: MAX_PAYLOAD, bytes: MAX_PAYLOAD + 1 });
    // the connection is still good afterwards
    const ok = await transport.request('exists', new TextEncoder().encode('{"key":"k"}'), 10_000);
    expect(decodeJson(ok)).toEqual({ ok: true, result: { exists: false } });

    // through the client: over the server's max_payload but under the API's own limit
    await using client = await createClient({
      servers: nats.url,
      cluster: 'maps',
      deadlineMs: 1500,
    });
    const keys = Array.from({ length: 100 }, (_, i) => `${i}-${'x'.repeat(1000)}`);
    const error = await client.putEndBatch(keys).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'REQUEST_TOO_LARGE',
      retryable: false,
      limit: MAX_PAYLOAD,
    });

    await transport.close();
    await expect(transport.request('exists', new Uint8Array(), 1000)).rejects.toBeInstanceOf(
      TransportClosedError,
    );
    await again.close();
  });

  it('a client rides through a handover from one listener to another', async () => {
    const old = new MapService();
    const next = new MapService();
    next.seq = 100;
    const first = await createNatsApiServerTransport({ nc: await conn(), cluster: 'ho' }).listen(
      createApiHandler(old),
    );
    const failovers: FailoverEvent[] = [];
    await using client = await createClient({
      servers: nats.url,
      cluster: 'ho',
      requestTimeoutMs: 2000,
      deadlineMs: 20_000,
      backoff: { initialMs: 10, maxMs: 100 },
      onFailover: (e) => failovers.push(e),
    });
    expect(await client.putStart('a', 1, 1)).toMatchObject({ seq: 1 });
    old.notPrimary = true; // fenced: answers NOT_PRIMARY until it stops listening
    const pending = client.putStart('b', 1, 1);
    await new Promise((r) => setTimeout(r, 200));
    await first.close();
    await new Promise((r) => setTimeout(r, 200));
    const second = await createNatsApiServerTransport({ nc: await conn(), cluster: 'ho' }).listen(
      createApiHandler(next),
    );
    expect(await pending).toMatchObject({ key: 'b', seq: 101 });
    expect(failovers).toHaveLength(1);
    expect(['NOT_PRIMARY', 'NO_RESPONDERS']).toContain(failovers[0]!.code);
    expect(failovers[0]!.waitedMs).toBeGreaterThanOrEqual(300);
    await second.close();
  });

  it('a listener announces itself: a client in a long backoff retries at once', async () => {
    const failovers: FailoverEvent[] = [];
    await using client = await createClient({
      servers: nats.url,
      cluster: 'an',
      deadlineMs: 120_000,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      random: () => 0.9, // backoff alone: the second attempt 54 s after the first
      onFailover: (e) => failovers.push(e),
    });
    const pending = client.exists('k');
    await new Promise((r) => setTimeout(r, 300));
    const listener = await createNatsApiServerTransport({ nc: await conn(), cluster: 'an' }).listen(
      createApiHandler(new MapService()),
    );
    expect(await pending).toBe(false);
    expect(failovers).toMatchObject([{ code: 'NO_RESPONDERS', attempt: 2 }]);
    expect(failovers[0]!.waitedMs).toBeLessThan(10_000);
    await listener.close();
  });

  it("a paused former primary, still subscribed, gets none of the new term's requests", async () => {
    // SIGSTOP: NATS keeps the old primary's subscriptions, but it never answers.
    const pausedNc = await conn();
    await createNatsApiServerTransport({ nc: pausedNc, cluster: 'sp' }).listen(
      () => new Promise<Uint8Array>(() => undefined),
      { epoch: 1 },
    );
    const failovers: FailoverEvent[] = [];
    await using client = await createClient({
      servers: nats.url,
      cluster: 'sp',
      // Long enough that a call to the serving term-2 listener never times out on a loaded
      // machine; a call sent to the paused one waits it out all the same.
      requestTimeoutMs: 2000,
      deadlineMs: 20_000,
      backoff: { initialMs: 10, maxMs: 50 },
      onFailover: (e) => failovers.push(e),
    });
    const service = new MapService();
    const next = await createNatsApiServerTransport({ nc: await conn(), cluster: 'sp' }).listen(
      createApiHandler(service),
      { epoch: 2 },
    );
    const calls = 40;
    for (let i = 0; i < calls; i++) {
      expect(await client.putStart(`k${i}`, 1, 1)).toMatchObject({ key: `k${i}` });
    }
    // Through the queue group about half the calls would wait out a timeout; addressed to
    // term 2, at most the first (if it went out before the client heard of term 2) does.
    expect(failovers.length).toBeLessThanOrEqual(1);
    expect(service.seq).toBe(calls);
    await next.close();
    await pausedNc.close();
  });
});
