import { describe, expect, it } from 'vitest';
import { checkHistory, formatFailures } from '../harness/history.ts';
import { checkOperations, type Model } from '../harness/linearizability.ts';
import type {
  ApiInput,
  ApiOperation,
  ApiOutput,
  PlacedReplica,
} from '../harness/understudyModel.ts';

/** A register (read/write), the checker's classic example. */
const register: Model<number, { w?: number }, number> = {
  init: () => [0],
  step: (state, input, output) =>
    input.w !== undefined ? [input.w] : output === undefined || output === state ? [state] : [],
  key: String,
};

describe('the Wing-Gong/Lowe search', () => {
  const op = (call: number, ret: number, input: { w?: number }, output?: number) => ({
    client: 0,
    call,
    return: ret,
    input,
    output,
  });

  it('accepts concurrent operations in the order that explains them', () => {
    // The read overlaps both writes: it may see either.
    const ops = [op(0, 10, { w: 1 }), op(5, 15, { w: 2 }), op(6, 20, {}, 1)];
    expect(checkOperations(register, ops).ok).toBe(true);
  });

  it('refuses a stale read: a read that began after a write returned cannot see the old value', () => {
    const ops = [op(0, 10, { w: 1 }), op(11, 12, {}, 0)];
    expect(checkOperations(register, ops)).toMatchObject({ ok: false, verdict: 'illegal' });
  });

  it('an operation with an unknown outcome may take effect or not', () => {
    const took = [op(0, Infinity, { w: 5 }), op(10, 11, {}, 5)];
    const didNot = [op(0, Infinity, { w: 5 }), op(10, 11, {}, 0)];
    expect(checkOperations(register, took).ok).toBe(true);
    expect(checkOperations(register, didNot).ok).toBe(true);
    // ... but once seen, it cannot be undone.
    expect(checkOperations(register, [...took, op(20, 21, {}, 0)]).ok).toBe(false);
  });

  it('gives up with "unknown" past its step budget instead of running forever', () => {
    const ops = Array.from({ length: 12 }, (_, i) => op(0, 100, { w: i }));
    ops.push(op(200, 201, {}, 99));
    expect(checkOperations(register, ops, { maxSteps: 50 })).toMatchObject({
      ok: false,
      verdict: 'unknown',
    });
  });
});

const replicas = (status: 'processing' | 'complete'): PlacedReplica[] => [
  { segmentId: 's1', nodeId: 'n1', offset: 0, length: 100, status },
  { segmentId: 's2', nodeId: 'n2', offset: 0, length: 100, status },
];

/** A history builder: ops with explicit times and outputs. */
function history() {
  const ops: ApiOperation[] = [];
  const add = (
    client: number,
    call: number,
    ret: number,
    input: ApiInput,
    output: ApiOutput | undefined,
  ) => {
    ops.push({ client, call, return: ret, input, output });
    return add;
  };
  // Two segments on two storage nodes, mounted first.
  add(
    0,
    0,
    1,
    { op: 'mountSegment', segmentId: 's1', nodeId: 'n1', size: 1000 },
    { ok: true, seq: 1 },
  );
  add(
    0,
    2,
    3,
    { op: 'mountSegment', segmentId: 's2', nodeId: 'n2', size: 1000 },
    { ok: true, seq: 2 },
  );
  return { ops, add };
}

const putK = { op: 'putStart', key: 'k', size: 100, replicaNum: 2 } as const;
const k = (op: 'putEnd' | 'putRevoke' | 'remove' | 'get' | 'exists') => ({ op, key: 'k' }) as const;
const record = (status: 'processing' | 'complete', lastSeq: number) => ({
  ok: true as const,
  record: { size: 100, replicas: replicas(status), lastSeq },
});

describe('the understudy model', () => {
  it('accepts a put, end, read and remove with their seqs and placement', () => {
    const { ops, add } = history();
    add(1, 10, 20, putK, { ok: true, seq: 3, replicas: replicas('processing') })(
      1,
      21,
      30,
      k('putEnd'),
      { ok: true, seq: 4 },
    )(2, 31, 32, k('get'), record('complete', 4))(2, 33, 34, k('remove'), { ok: true, seq: 5 })(
      3,
      35,
      36,
      k('exists'),
      { ok: true, exists: false },
    )(3, 37, 38, k('putEnd'), { ok: false, code: 'OBJECT_NOT_FOUND' });
    expect(formatFailures(checkHistory(ops))).toBe('');
  });

  it('refuses a stale read after an acknowledged write', () => {
    const { ops, add } = history();
    add(1, 10, 20, putK, { ok: true, seq: 3, replicas: replicas('processing') })(
      1,
      21,
      30,
      k('putEnd'),
      { ok: true, seq: 4 },
    )(2, 31, 32, k('get'), record('processing', 3));
    const failures = checkHistory(ops);
    expect(failures.map((f) => f.partition)).toEqual(['key "k"']);
    expect(formatFailures(failures)).toContain('get("k")');
  });

  it('refuses a double effect of one request: a lost-reply remove retried after another client re-created the key', () => {
    const { ops, add } = history();
    add(1, 10, 11, putK, { ok: true, seq: 3, replicas: replicas('processing') })(
      1,
      12,
      13,
      k('putEnd'),
      { ok: true, seq: 4 },
    )(
      // c2's remove: the first attempt removed k (reply lost), the retry removed c3's k.
      2,
      20,
      60,
      k('remove'),
      { ok: true, seq: 7 },
    )(3, 30, 31, putK, { ok: true, seq: 5, replicas: replicas('processing') })(
      3,
      32,
      33,
      k('putEnd'),
      { ok: true, seq: 6 },
    )(4, 70, 71, k('exists'), { ok: true, exists: false });
    expect(checkHistory(ops)).toHaveLength(1);
  });

  it('refuses a retry answered with OBJECT_EXISTS for its own earlier attempt', () => {
    const { ops, add } = history();
    // The first attempt created k (reply lost); the retry got OBJECT_EXISTS: no order explains
    // k existing, since no successful putStart is in the history.
    add(1, 10, 50, putK, { ok: false, code: 'OBJECT_EXISTS' })(
      2,
      60,
      61,
      k('get'),
      record('processing', 3),
    );
    expect(checkHistory(ops)).toHaveLength(1);
  });

  it('refuses a refusal no order explains', () => {
    const { ops, add } = history();
    add(1, 10, 20, putK, { ok: true, seq: 3, replicas: replicas('processing') })(
      2,
      30,
      31,
      k('putEnd'),
      { ok: false, code: 'OBJECT_NOT_FOUND' },
    );
    expect(checkHistory(ops)).toHaveLength(1);
    // A refusal concurrent with the put is explained (it came first).
    const concurrent = history();
    concurrent.add(1, 10, 20, putK, { ok: true, seq: 3, replicas: replicas('processing') })(
      2,
      15,
      31,
      k('putEnd'),
      { ok: false, code: 'OBJECT_NOT_FOUND' },
    );
    expect(checkHistory(concurrent.ops)).toEqual([]);
  });

  it('refuses seqs that go back in the order of the writes', () => {
    const { ops, add } = history();
    add(1, 10, 20, putK, { ok: true, seq: 4, replicas: replicas('processing') })(
      1,
      21,
      30,
      k('putEnd'),
      { ok: true, seq: 3 },
    );
    expect(checkHistory(ops)).toHaveLength(1);
  });

  it('an unknown putStart may have happened: a later read binds its placement', () => {
    const { ops, add } = history();
    add(1, 10, Infinity, putK, undefined)(2, 20, 21, k('get'), record('processing', 3))(
      2,
      22,
      23,
      k('exists'),
      { ok: true, exists: true },
    );
    expect(checkHistory(ops)).toEqual([]);
    // ... and once read, it cannot be undone, nor read with another placement.
    add(3, 30, 31, k('exists'), { ok: true, exists: false });
    expect(checkHistory(ops)).toHaveLength(1);
    const other = history();
    other.add(1, 10, Infinity, putK, undefined)(2, 20, 21, k('get'), record('processing', 3))(
      2,
      22,
      23,
      k('get'),
      {
        ok: true,
        record: { size: 100, replicas: replicas('processing').reverse(), lastSeq: 3 },
      },
    );
    expect(checkHistory(other.ops)).toHaveLength(1);
  });

  it('an unmount drops the replicas on the segment; the last one takes the object', () => {
    const { ops, add } = history();
    add(1, 10, 11, putK, { ok: true, seq: 3, replicas: replicas('processing') })(
      1,
      12,
      13,
      k('putEnd'),
      { ok: true, seq: 4 },
    )(2, 14, 15, { op: 'unmountSegment', segmentId: 's1' }, { ok: true, seq: 5 })(
      3,
      16,
      17,
      k('get'),
      {
        ok: true,
        record: { size: 100, replicas: replicas('complete').slice(1), lastSeq: 5 },
      },
    )(2, 18, 19, { op: 'unmountSegment', segmentId: 's2' }, { ok: true, seq: 6 })(
      3,
      20,
      21,
      k('exists'),
      { ok: true, exists: false },
    )(
      2,
      22,
      23,
      { op: 'unmountSegment', segmentId: 's2' },
      { ok: false, code: 'SEGMENT_NOT_FOUND' },
    );
    expect(formatFailures(checkHistory(ops))).toBe('');
  });

  it('a placement on a segment that is not mounted is refused', () => {
    const { ops, add } = history();
    add(1, 10, 11, putK, {
      ok: true,
      seq: 3,
      replicas: [{ ...replicas('processing')[0]!, segmentId: 's9' }, replicas('processing')[1]!],
    });
    expect(checkHistory(ops)).toHaveLength(1);
  });

  it('capacity and read leases are not known per key: NO_SPACE and LEASED are always explained', () => {
    const { ops, add } = history();
    add(1, 10, 11, putK, { ok: false, code: 'NO_SPACE' })(1, 12, 13, putK, {
      ok: true,
      seq: 3,
      replicas: replicas('processing'),
    })(1, 14, 15, k('putEnd'), { ok: true, seq: 4 })(2, 16, 17, k('remove'), {
      ok: false,
      code: 'LEASED',
    })(
      // An eviction by the primary (from the log), visible by t=30.
      -1,
      0,
      30,
      { op: 'evict', key: 'k' },
      { ok: true },
    )(3, 31, 32, k('get'), { ok: false, code: 'OBJECT_NOT_FOUND' });
    expect(formatFailures(checkHistory(ops))).toBe('');
  });
});
