import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { createApiHandler } from '../../src/api/handler.ts';
import {
  NotPrimaryError,
  type BatchItemResult,
  type ExecuteResult,
  type MetadataService,
} from '../../src/ports/metadataService.ts';
import { MAX_BATCH_ITEMS } from '../../src/api/schema.ts';
import { decodeJson, MAX_REQUEST_BYTES, wireReplySchema } from '../../src/api/wire.ts';
import { decide } from '../../src/domain/decide/decide.ts';
import { DomainError, invalidArgument, ObjectExistsError } from '../../src/domain/model/errors.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { Command, ObjectRecord, Replica } from '../../src/domain/model/types.ts';
import { propRuns } from '../property/runs.ts';

const replica: Replica = {
  segmentId: 'seg-1',
  nodeId: 'node-1',
  offset: 0,
  length: 10,
  status: 'processing',
};

/** A service whose every answer the test sets; records the calls it gets. */
class StubService implements MetadataService {
  readonly commands: Command[] = [];
  readonly batches: (readonly Command[])[] = [];
  execute = vi.fn((command: Command): Promise<ExecuteResult> =>
    Promise.resolve(command.type === 'putStart' ? { seq: 7, replicas: [replica] } : { seq: 7 }),
  );
  executeBatch = vi.fn((commands: readonly Command[]): Promise<BatchItemResult[]> =>
    Promise.resolve(
      commands.map((c, i) => ({
        ok: true as const,
        result: c.type === 'putStart' ? { seq: i + 1, replicas: [replica] } : { seq: i + 1 },
      })),
    ),
  );
  get = vi.fn((key: string): Promise<ObjectRecord> =>
    Promise.resolve({ key, size: 10, replicas: [replica], lastSeq: 3 }),
  );
  exists = vi.fn((key: string): Promise<boolean> => Promise.resolve(key === 'there'));
}

const enc = new TextEncoder();
const json = (value: unknown): Uint8Array => enc.encode(JSON.stringify(value));

async function call(
  service: MetadataService,
  op: string,
  body: unknown,
  options: Parameters<typeof createApiHandler>[1] = {},
) {
  const handler = createApiHandler(service, options);
  const bytes = await handler(op, body instanceof Uint8Array ? body : json(body));
  return wireReplySchema.parse(decodeJson(bytes));
}

async function errorOf(service: MetadataService, op: string, body: unknown) {
  const reply = await call(service, op, body);
  if (reply.ok) throw new Error(`expected an error, got ${JSON.stringify(reply.result)}`);
  return reply.error;
}

describe('api handler: every op', () => {
  it('mountSegment and unmountSegment execute the command and answer its seq', async () => {
    const s = new StubService();
    expect(await call(s, 'mountSegment', { segmentId: 'a', nodeId: 'n', size: 100 })).toEqual({
      ok: true,
      result: { seq: 7 },
    });
    expect(await call(s, 'unmountSegment', { segmentId: 'a' })).toEqual({
      ok: true,
      result: { seq: 7 },
    });
    expect(s.execute.mock.calls.map((c) => c[0])).toEqual([
      { type: 'mountSegment', segmentId: 'a', nodeId: 'n', size: 100 },
      { type: 'unmountSegment', segmentId: 'a' },
    ]);
  });

  it('putStart answers the placement', async () => {
    const s = new StubService();
    expect(await call(s, 'putStart', { key: 'k', size: 10, replicaNum: 1 })).toEqual({
      ok: true,
      result: { key: 'k', size: 10, replicas: [replica], seq: 7 },
    });
    expect(s.execute).toHaveBeenCalledWith(
      { type: 'putStart', key: 'k', size: 10, replicaNum: 1 },
      undefined,
    );
  });

  it.each(['putEnd', 'putRevoke', 'remove'] as const)('%s executes on the key', async (op) => {
    const s = new StubService();
    expect(await call(s, op, { key: 'k' })).toEqual({ ok: true, result: { seq: 7 } });
    expect(s.execute).toHaveBeenCalledWith({ type: op, key: 'k' }, undefined);
  });

  it('a write with a session passes its origin; batch items get consecutive numbers', async () => {
    const s = new StubService();
    const session = { id: 'ab'.repeat(16), requestNo: 7, oldestPending: 5 };
    await call(s, 'putStart', { key: 'k', size: 10, replicaNum: 1, session });
    expect(s.execute).toHaveBeenLastCalledWith(
      { type: 'putStart', key: 'k', size: 10, replicaNum: 1 },
      { sessionId: session.id, requestNo: 7, oldestPending: 5 },
    );
    await call(s, 'putEndBatch', { keys: ['a', 'b'], session });
    expect(s.executeBatch).toHaveBeenLastCalledWith(
      [
        { type: 'putEnd', key: 'a' },
        { type: 'putEnd', key: 'b' },
      ],
      [
        { sessionId: session.id, requestNo: 7, oldestPending: 5 },
        { sessionId: session.id, requestNo: 8, oldestPending: 5 },
      ],
    );
    // get and exists take no session: they change nothing in the log.
    expect((await call(s, 'get', { key: 'k', session })).ok).toBe(false);
  });

  it('get answers the record and exists a boolean', async () => {
    const s = new StubService();
    expect(await call(s, 'get', { key: 'k' })).toEqual({
      ok: true,
      result: { key: 'k', size: 10, replicas: [replica], lastSeq: 3 },
    });
    expect(await call(s, 'exists', { key: 'there' })).toEqual({
      ok: true,
      result: { exists: true },
    });
    expect(await call(s, 'exists', { key: 'nope' })).toEqual({
      ok: true,
      result: { exists: false },
    });
  });

  it('batches answer one result per item, each ok or a typed error', async () => {
    const s = new StubService();
    s.executeBatch.mockImplementationOnce((commands) =>
      Promise.resolve(
        (
          [
            { ok: true, result: { seq: 1, replicas: [replica] } },
            { ok: false, error: new ObjectExistsError('b', [replica], true) },
            { ok: false, error: invalidArgument('size', 'too big', 5) },
            { ok: false, error: new Error('boom') },
          ] satisfies BatchItemResult[]
        ).slice(0, commands.length),
      ),
    );
    const items = ['a', 'b', 'c', 'd'].map((key) => ({ key, size: 10, replicaNum: 1 }));
    const reply = await call(s, 'putStartBatch', { items });
    expect(reply).toEqual({
      ok: true,
      result: {
        results: [
          { ok: true, result: { key: 'a', size: 10, replicas: [replica], seq: 1 } },
          {
            ok: false,
            error: {
              code: 'OBJECT_EXISTS',
              message: 'object "b" exists',
              retryable: false,
              field: 'key',
              details: { replicas: [replica], complete: true },
            },
          },
          {
            ok: false,
            error: {
              code: 'INVALID_ARGUMENT',
              message: 'invalid size: too big (limit 5)',
              retryable: false,
              field: 'size',
              limit: 5,
            },
          },
          {
            ok: false,
            error: {
              code: 'INTERNAL',
              message: 'internal error in putStartBatch',
              retryable: false,
            },
          },
        ],
      },
    });
    expect(await call(s, 'putEndBatch', { keys: ['a', 'b'] })).toEqual({
      ok: true,
      result: {
        results: [
          { ok: true, result: { seq: 1 } },
          { ok: true, result: { seq: 2 } },
        ],
      },
    });
    expect(s.executeBatch).toHaveBeenLastCalledWith(
      [
        { type: 'putEnd', key: 'a' },
        { type: 'putEnd', key: 'b' },
      ],
      undefined,
    );
  });
});

describe('api handler: writeBatch', () => {
  const session = { id: 'ab'.repeat(16), oldestPending: 3 };

  it('decides every op in one batch, each item with its own request number and result', async () => {
    const s = new StubService();
    const items = [
      { op: 'mountSegment', segmentId: 'g', nodeId: 'n', size: 100, requestNo: 9 },
      { op: 'putStart', key: 'k', size: 10, replicaNum: 1, requestNo: 3 },
      { op: 'putEnd', key: 'k', requestNo: 12 },
      { op: 'putRevoke', key: 'r', requestNo: 4 },
      { op: 'remove', key: 'x', requestNo: 5 },
      { op: 'unmountSegment', segmentId: 'g', requestNo: 6 },
    ];
    const reply = await call(s, 'writeBatch', { items, session });
    expect(reply).toEqual({
      ok: true,
      result: {
        results: [
          { ok: true, result: { seq: 1 } },
          { ok: true, result: { key: 'k', size: 10, replicas: [replica], seq: 2 } },
          { ok: true, result: { seq: 3 } },
          { ok: true, result: { seq: 4 } },
          { ok: true, result: { seq: 5 } },
          { ok: true, result: { seq: 6 } },
        ],
      },
    });
    expect(s.executeBatch).toHaveBeenCalledTimes(1);
    const [commands, origins] = s.executeBatch.mock.calls[0] as unknown as [
      Command[],
      { sessionId: string; requestNo: number; oldestPending: number }[],
    ];
    expect(commands).toEqual([
      { type: 'mountSegment', segmentId: 'g', nodeId: 'n', size: 100 },
      { type: 'putStart', key: 'k', size: 10, replicaNum: 1 },
      { type: 'putEnd', key: 'k' },
      { type: 'putRevoke', key: 'r' },
      { type: 'remove', key: 'x' },
      { type: 'unmountSegment', segmentId: 'g' },
    ]);
    expect(origins.map((o) => o.requestNo)).toEqual([9, 3, 12, 4, 5, 6]);
    expect(new Set(origins.map((o) => `${o.sessionId}/${o.oldestPending}`))).toEqual(
      new Set([`${session.id}/3`]),
    );
    expect(s.execute).not.toHaveBeenCalled();
  });

  it('a malformed item gets its own BAD_REQUEST naming the field; the others are decided', async () => {
    const s = new StubService();
    const items = [
      { op: 'putEnd', key: 'a', requestNo: 3 },
      { op: 'putEnd', key: 7, requestNo: 4 },
      { op: 'get', key: 'b', requestNo: 5 },
      { op: 'putEnd', key: 'c', extra: 1, requestNo: 6 },
      { op: 'putStart', key: 'd', size: 1, requestNo: 7 },
      { op: 'putEnd', key: 'e' },
      'not an item',
      { op: 'remove', key: 'f', requestNo: 8 },
    ];
    const reply = await call(s, 'writeBatch', { items, session });
    if (!reply.ok) throw new Error('expected results');
    const results = (reply.result as { results: { ok: boolean; error?: { field?: string } }[] })
      .results;
    expect(results.map((r) => (r.ok ? 'ok' : r.error?.field))).toEqual([
      'ok',
      'items.1.key',
      'items.2.op',
      'items.3.extra',
      'items.4.replicaNum',
      'items.5.requestNo',
      'items.6',
      'ok',
    ]);
    for (const r of results.filter((x) => !x.ok))
      expect(r).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    const [commands] = s.executeBatch.mock.calls[0] as unknown as [Command[]];
    expect(commands).toEqual([
      { type: 'putEnd', key: 'a' },
      { type: 'remove', key: 'f' },
    ]);
    // Without a session, items carry no request number and pass no origins.
    const plain = new StubService();
    const noSession = await call(plain, 'writeBatch', {
      items: [
        { op: 'putEnd', key: 'a' },
        { op: 'putEnd', key: 'b', requestNo: 1 },
      ],
    });
    expect(
      noSession.ok && (noSession.result as { results: { ok: boolean }[] }).results.map((r) => r.ok),
    ).toEqual([true, false]);
    expect((plain.executeBatch.mock.calls[0] as unknown[] | undefined)?.[1]).toBeUndefined();
  });

  it('a bad envelope is a BAD_REQUEST of the whole request, and nothing is decided', async () => {
    const s = new StubService();
    const tooMany = Array.from({ length: MAX_BATCH_ITEMS + 1 }, (_, i) => ({
      op: 'putEnd',
      key: `k${i}`,
      requestNo: i + 3,
    }));
    for (const [body, field] of [
      [{ items: 'x', session }, 'items'],
      [{ items: [], session, more: 1 }, 'more'],
      [{ items: [], session: { id: 'x' } }, 'session.oldestPending'],
      [{ items: [], session: { ...session, requestNo: 1 } }, 'session.requestNo'],
      [{ items: tooMany, session }, 'items'],
      [[1, 2], 'body'],
    ] as const) {
      expect(await errorOf(s, 'writeBatch', body)).toMatchObject({ code: 'BAD_REQUEST', field });
    }
    expect(s.executeBatch).not.toHaveBeenCalled();
  });

  it('items refused by the service get their own typed error; NOT_PRIMARY fails the request', async () => {
    const s = new StubService();
    s.executeBatch.mockImplementationOnce((commands) =>
      Promise.resolve(
        commands.map((c, i): BatchItemResult =>
          i === 0
            ? { ok: false, error: new ObjectExistsError('k', [replica], true) }
            : {
                ok: true,
                result: c.type === 'putStart' ? { seq: 2, replicas: [replica] } : { seq: 2 },
              },
        ),
      ),
    );
    const items = [
      { op: 'putStart', key: 'k', size: 10, replicaNum: 1, requestNo: 3 },
      { op: 'putEnd', key: 'j', requestNo: 4 },
    ];
    const reply = await call(s, 'writeBatch', { items, session });
    expect(reply).toMatchObject({
      ok: true,
      result: {
        results: [
          { ok: false, error: { code: 'OBJECT_EXISTS', details: { complete: true } } },
          { ok: true, result: { seq: 2 } },
        ],
      },
    });
    s.executeBatch.mockImplementationOnce(() => Promise.reject(new NotPrimaryError('standby')));
    expect(await errorOf(s, 'writeBatch', { items, session })).toMatchObject({
      code: 'NOT_PRIMARY',
      retryable: true,
    });
  });
});

describe('api handler: error mapping', () => {
  it('a DomainError keeps its code, field and limit; not retryable', async () => {
    const s = new StubService();
    s.execute.mockRejectedValueOnce(
      new DomainError('NO_SPACE', 'full', { field: 'size', limit: 10 }),
    );
    expect(await errorOf(s, 'putStart', { key: 'k', size: 10, replicaNum: 1 })).toEqual({
      code: 'NO_SPACE',
      message: 'full',
      retryable: false,
      field: 'size',
      limit: 10,
    });
  });

  it('OBJECT_EXISTS carries the existing placement and whether it is complete', async () => {
    const s = new StubService();
    s.execute.mockRejectedValueOnce(new ObjectExistsError('k', [replica], false));
    const error = await errorOf(s, 'putStart', { key: 'k', size: 10, replicaNum: 1 });
    expect(error).toMatchObject({
      code: 'OBJECT_EXISTS',
      retryable: false,
      details: { replicas: [replica], complete: false },
    });
  });

  it('NotPrimaryError is a retryable NOT_PRIMARY, with the leader when known', async () => {
    const s = new StubService();
    s.execute.mockRejectedValueOnce(new NotPrimaryError('fenced', { leader: 'n2' }));
    expect(await errorOf(s, 'putEnd', { key: 'k' })).toMatchObject({
      code: 'NOT_PRIMARY',
      retryable: true,
      details: { leader: 'n2' },
    });
  });

  it('a service that throws synchronously is answered too', async () => {
    const s = new StubService();
    s.get.mockImplementationOnce(() => {
      throw new NotPrimaryError('handing over');
    });
    expect(await errorOf(s, 'get', { key: 'k' })).toMatchObject({
      code: 'NOT_PRIMARY',
      retryable: true,
    });
  });

  it('anything else is INTERNAL, reported to onInternalError, without leaking the message', async () => {
    const s = new StubService();
    s.exists.mockRejectedValueOnce(new Error('secret detail'));
    const onInternalError = vi.fn();
    const reply = await call(s, 'exists', { key: 'k' }, { onInternalError });
    expect(reply).toEqual({
      ok: false,
      error: { code: 'INTERNAL', message: 'internal error in exists', retryable: false },
    });
    expect(onInternalError).toHaveBeenCalledWith('exists', expect.any(Error));
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a non-Error on purpose
    s.exists.mockImplementationOnce(() => Promise.reject('a string'));
    expect(await errorOf(s, 'exists', { key: 'k' })).toMatchObject({ code: 'INTERNAL' });
  });

  it('a putStart result without a placement is INTERNAL', async () => {
    const s = new StubService();
    s.execute.mockResolvedValueOnce({ seq: 1 });
    expect(await errorOf(s, 'putStart', { key: 'k', size: 1, replicaNum: 1 })).toMatchObject({
      code: 'INTERNAL',
    });
  });
});

describe('api handler: bad requests change nothing', () => {
  const untouched = (s: StubService): void => {
    expect(s.execute).not.toHaveBeenCalled();
    expect(s.executeBatch).not.toHaveBeenCalled();
    expect(s.get).not.toHaveBeenCalled();
    expect(s.exists).not.toHaveBeenCalled();
  };

  it('oversize bodies are REQUEST_TOO_LARGE, checked before parsing', async () => {
    const s = new StubService();
    const big = new Uint8Array(MAX_REQUEST_BYTES + 1).fill(0x20);
    expect(await errorOf(s, 'putEnd', big)).toMatchObject({
      code: 'REQUEST_TOO_LARGE',
      retryable: false,
      limit: MAX_REQUEST_BYTES,
    });
    const small = createApiHandler(s, { maxRequestBytes: 8 });
    const reply = wireReplySchema.parse(
      decodeJson(await small('putEnd', json({ key: 'long-key' }))),
    );
    expect(reply).toMatchObject({ ok: false, error: { code: 'REQUEST_TOO_LARGE', limit: 8 } });
    untouched(s);
  });

  it.each([
    ['invalid UTF-8', new Uint8Array([0xff, 0x00, 0x13, 0x37])],
    ['truncated JSON', enc.encode('{"key":')],
    ['empty body', new Uint8Array()],
  ])('garbage bytes (%s) are BAD_REQUEST', async (_name, bytes) => {
    const s = new StubService();
    expect(await errorOf(s, 'putEnd', bytes)).toMatchObject({
      code: 'BAD_REQUEST',
      retryable: false,
    });
    untouched(s);
  });

  it.each(['frobnicate', '__proto__', 'constructor', 'toString', ''])(
    'unknown op %j is BAD_REQUEST naming the op',
    async (op) => {
      const s = new StubService();
      expect(await errorOf(s, op, { key: 'x' })).toMatchObject({
        code: 'BAD_REQUEST',
        field: 'op',
      });
      untouched(s);
    },
  );

  it.each([
    ['putStart', { key: 42, size: 1, replicaNum: 1 }, 'key'],
    ['putStart', { key: 'k', size: '1', replicaNum: 1 }, 'size'],
    ['putStart', { key: 'k', size: 1 }, 'replicaNum'],
    ['mountSegment', { segmentId: 's', nodeId: null, size: 1 }, 'nodeId'],
    ['putEnd', { key: 'k', extra: true }, undefined],
    ['get', null, undefined],
    ['exists', ['k'], undefined],
    ['putEndBatch', { keys: 'k' }, 'keys'],
    ['putStartBatch', { items: [{ key: 'k', size: 1, replicaNum: 1, color: 'red' }] }, 'items.0'],
    [
      'putEndBatch',
      { keys: Array.from({ length: MAX_BATCH_ITEMS + 1 }, (_, i) => `k${i}`) },
      'keys',
    ],
  ])('%s %j is BAD_REQUEST (field %s)', async (op, body, field) => {
    const s = new StubService();
    const error = await errorOf(s, op, body);
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.field).toBe(field);
    untouched(s);
  });

  it('values the shape allows (negative size, long key) reach decide, which names field and limit', async () => {
    // A service that validates like the primary: decide on the empty state.
    const s = new StubService();
    s.execute.mockImplementation((command) => {
      const decision = decide(emptyState(), command, { isReadLeased: () => false });
      return decision.ok ? Promise.resolve({ seq: 1 }) : Promise.reject(decision.error);
    });
    expect(await errorOf(s, 'putStart', { key: 'neg', size: -1, replicaNum: 1 })).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'size',
      retryable: false,
    });
    expect(
      await errorOf(s, 'putStart', { key: 'k'.repeat(5000), size: 1, replicaNum: 1 }),
    ).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'key', limit: 1024 });
  });

  it('never throws and always answers a well-formed reply, whatever the bytes and op', async () => {
    const handler = createApiHandler(new StubService());
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'putStart',
          'putEnd',
          'get',
          'exists',
          'putStartBatch',
          'mountSegment',
          'nope',
        ),
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.json().map((text) => enc.encode(text)),
          fc.jsonValue().map((value) => json({ key: value, size: value, replicaNum: value })),
        ),
        async (op, body) => {
          const reply = wireReplySchema.safeParse(decodeJson(await handler(op, body)));
          expect(reply.success).toBe(true);
        },
      ),
      { numRuns: propRuns() },
    );
  });
});
