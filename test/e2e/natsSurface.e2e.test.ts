// The NATS surface of real node processes: the client API subjects and the admin subjects get
// random bytes, truncated JSON, wrong types and oversize bodies (fast-check). Each gets a typed
// error reply (never INTERNAL), no node dies, the state does not change, and writes still work.
import type { NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UnderstudyClient } from '../../src/client/client.ts';
import { API_OPS } from '../../src/api/schema.ts';
import { apiSubject, currentTermSubject, termSubject } from '../../src/api/subjects.ts';
import { adminSubject } from '../../src/adapters/nats/natsAdminTransport.ts';
import type { NodeFleet, NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { clusterStates, startTwoNodes, stopAll } from '../harness/e2eCluster.ts';

const CLUSTER = 'natsfuzz';

const cleanups: Array<() => Promise<void>> = [];
let fleet: NodeFleet;
let client: UnderstudyClient;
/** A connection of the test's own, for the raw requests. */
let raw: NatsConnection;
let primary: NodeHandle;

beforeAll(async () => {
  ({ fleet, client, nc: raw, primary } = await startTwoNodes(cleanups, CLUSTER));
  await client.putStart('existing', 1024, 2);
}, 120_000);

afterAll(() => stopAll(cleanups));

const clusterState = (): Promise<string[]> => clusterStates(fleet, primary);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Valid-looking requests whose bodies the generators break. */
const TEMPLATES: Record<string, unknown> = {
  mountSegment: { segmentId: 'x', nodeId: 'x', size: 1 },
  unmountSegment: { segmentId: 'x' },
  putStart: { key: 'x', size: 1, replicaNum: 1 },
  putEnd: { key: 'x' },
  putRevoke: { key: 'x' },
  remove: { key: 'existing' },
  get: { key: 'existing' },
  exists: { key: 'existing' },
  putStartBatch: { items: [{ key: 'x', size: 1, replicaNum: 1 }] },
  putEndBatch: { keys: ['existing'] },
  writeBatch: { items: [] },
  verify: { appliedSeq: 1, shards: [] },
  syncChunk: { syncId: 'x', index: 0, part: 0 },
};

/** A body that is never a valid request: bytes, truncated JSON, a wrong type, an extra field, oversize. */
function badBody(op: string): fc.Arbitrary<Uint8Array> {
  const template = JSON.stringify(TEMPLATES[op] ?? {});
  const wrong = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.string({ maxLength: 8 }),
    fc.array(fc.integer(), { maxLength: 3 }),
    fc.constant({ nested: { deep: [1, 'a'] } }),
  );
  const fields = Object.keys((TEMPLATES[op] as Record<string, unknown> | undefined) ?? {});
  return fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc
      .integer({ min: 1, max: Math.max(1, template.length - 1) })
      .map((n) => encoder.encode(template.slice(0, n))),
    fields.length === 0
      ? fc.constant(encoder.encode('[]'))
      : fc
          .tuple(fc.constantFrom(...fields), wrong)
          .filter(([field, value]) => {
            // A wrong type only: a string where a string goes is a valid request.
            const expected = (TEMPLATES[op] as Record<string, unknown>)[field];
            return (
              typeof value !== typeof expected || Array.isArray(value) !== Array.isArray(expected)
            );
          })
          .map(([field, value]) =>
            encoder.encode(JSON.stringify({ ...(TEMPLATES[op] as object), [field]: value })),
          ),
    fc
      .string({ maxLength: 8 })
      .map((f) => encoder.encode(JSON.stringify({ ...(TEMPLATES[op] as object), [`zz${f}`]: 1 }))),
    fc
      .integer({ min: 100, max: 900 })
      .map((k) => encoder.encode(`{"key":"${'k'.repeat(k * 1000)}"`)),
    fc
      .constantFrom('', '{}', '[]', 'null', '1', '"x"', '{"__proto__":{"a":1}}')
      .map((t) => encoder.encode(t)),
  );
}

describe('malformed NATS requests get a typed error and change nothing', () => {
  it('client API subjects (fast-check, 150 runs)', async () => {
    const before = await clusterState();
    const { epoch } = await primary.status();
    const ops = [...API_OPS, 'frobnicate', 'term'];
    const subject = fc
      .constantFrom(...ops)
      .chain((op) =>
        fc.tuple(
          fc.constant(op),
          fc.constantFrom(
            API_OPS.includes(op as never)
              ? termSubject(CLUSTER, epoch, op)
              : apiSubject(CLUSTER, op),
            op === 'term' ? currentTermSubject(CLUSTER) : apiSubject(CLUSTER, op),
          ),
        ),
      );
    await fc.assert(
      fc.asyncProperty(
        subject.chain(([op, subj]) => fc.tuple(fc.constant(subj), badBody(op))),
        async ([subj, body]) => {
          const reply = await raw.request(subj, body, { timeout: 10_000 });
          if (subj === currentTermSubject(CLUSTER)) return; // answers its epoch to anything
          const answer = JSON.parse(decoder.decode(reply.data)) as {
            ok?: boolean;
            error?: { code?: string };
          };
          expect(answer.ok, decoder.decode(reply.data).slice(0, 200)).toBe(false);
          expect(answer.error?.code).toMatch(/^[A-Z_]+$/);
          expect(answer.error?.code).not.toBe('INTERNAL');
        },
      ),
      { numRuns: 150, seed: 25, endOnFailure: true },
    );
    for (const node of fleet.nodes) expect(node.running, node.id).toBe(true);
    expect(await clusterState()).toEqual(before);
    expect(await client.putStart('after-api-fuzz', 1024, 2)).toMatchObject({
      key: 'after-api-fuzz',
    });
  });

  it('admin subjects (fast-check, 100 runs)', async () => {
    const before = await clusterState();
    const op = fc.constantFrom('verify', 'syncChunk', 'nope');
    await fc.assert(
      fc.asyncProperty(
        op.chain((o) => fc.tuple(fc.constant(o), badBody(o))),
        async ([o, body]) => {
          const reply = await raw.request(adminSubject(CLUSTER, o), body, { timeout: 10_000 });
          // Admin framing: tag 0x00 then the JSON error.
          expect(reply.data[0], `${o}: ${decoder.decode(reply.data).slice(0, 200)}`).toBe(0);
          const error = JSON.parse(decoder.decode(reply.data.subarray(1))) as { code?: string };
          // VerifyInputError: verification's refusal of a malformed round; SYNC_GONE: no such sync.
          expect(['BAD_REQUEST', 'UNKNOWN_OP', 'VerifyInputError', 'SYNC_GONE']).toContain(
            error.code,
          );
        },
      ),
      { numRuns: 100, seed: 25, endOnFailure: true },
    );
    for (const node of fleet.nodes) expect(node.running, node.id).toBe(true);
    expect(await clusterState()).toEqual(before);
    expect(await client.putStart('after-admin-fuzz', 1024, 2)).toMatchObject({
      key: 'after-admin-fuzz',
    });
  });
});
