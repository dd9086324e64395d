import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  createApiHandler,
  NotPrimaryError,
  type BatchItemResult,
  type ExecuteResult,
  type MetadataService,
} from '../../src/api/handler.ts';
import { MAX_BATCH_ITEMS } from '../../src/api/schema.ts';
import { decodeJson, MAX_REQUEST_BYTES, wireReplySchema } from '../../src/api/wire.ts';
import { decide } from '../../src/domain/decide.ts';
import { DomainError, invalidArgument, ObjectExistsError } from '../../src/domain/errors.ts';
import { emptyState } from '../../src/domain/state.ts';
import type { Command, ObjectRecord, Replica } from '../../src/domain/types.ts';
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
