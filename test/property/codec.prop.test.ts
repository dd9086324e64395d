import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  decodeBatch,
  decodeEntry,
  encodeBatch,
  encodeEntry,
} from '../../src/domain/log/codec.ts';
import { fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import type { LoggedEvent, MetadataEvent, Replica } from '../../src/domain/model/types.ts';
import { propRuns } from './runs.ts';

const idArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });
const keyArb = fc.oneof(idArb, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }));
const sizeArb = fc.integer({ min: 1, max: 2 ** 40 });

const replicaArb: fc.Arbitrary<Replica> = fc.record({
  segmentId: idArb,
  nodeId: idArb,
  offset: fc.integer({ min: 0, max: 2 ** 50 }),
  length: sizeArb,
  status: fc.constantFrom('processing' as const, 'complete' as const),
});

const eventArb: fc.Arbitrary<MetadataEvent> = fc.oneof(
  fc.record({
    op: fc.constant('MOUNT_SEGMENT' as const),
    segmentId: idArb,
    nodeId: idArb,
    size: sizeArb,
  }),
  fc.record({ op: fc.constant('UNMOUNT_SEGMENT' as const), segmentId: idArb }),
  fc.record({
    op: fc.constant('PUT_START' as const),
    key: keyArb,
    size: sizeArb,
    replicas: fc.array(replicaArb, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    op: fc.constantFrom('PUT_END' as const, 'PUT_REVOKE' as const, 'REMOVE' as const),
    key: keyArb,
  }),
  fc.record({
    op: fc.constant('EVICTION' as const),
    keys: fc.array(keyArb, { minLength: 1, maxLength: 5 }),
  }),
  fc.record({ op: fc.constant('EPOCH' as const), epoch: fc.nat(), nodeId: idArb }),
);

const loggedArb = (seq: fc.Arbitrary<number>): fc.Arbitrary<LoggedEvent> =>
  fc.record({ seq, epoch: fc.nat(), ts: fc.nat({ max: 2 ** 45 }), event: eventArb });

const batchArb = fc
  .tuple(
    fc.integer({ min: 1, max: 2 ** 40 }),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 ** 45 }), eventArb), { maxLength: 6 }),
  )
  .map(([first, items]) =>
    items.map(([epoch, ts, event], i): LoggedEvent => ({ seq: first + i, epoch, ts, event })),
  );

/** A copy of `bytes` with byte `index` changed (never to itself). */
function mutate(bytes: Uint8Array, index: number, delta: number): Uint8Array {
  const out = bytes.slice();
  const i = index % out.length;
  out[i] = (out[i]! + 1 + (delta % 255)) & 0xff;
  return out;
}

describe('codec properties', () => {
  it('any entry round-trips through toEntry, encodeEntry, decodeEntry, fromEntry', () => {
    fc.assert(
      fc.property(loggedArb(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })), (logged) => {
        const entry = toEntry(logged);
        const decoded = decodeEntry(encodeEntry(entry));
        expect(decoded).toEqual(entry);
        expect(fromEntry(decoded)).toEqual(logged);
      }),
      { numRuns: propRuns() },
    );
  });

  it('any batch round-trips', () => {
    fc.assert(
      fc.property(batchArb, (batch) => {
        const entries = batch.map(toEntry);
        expect(decodeBatch(encodeBatch(entries))).toEqual(entries);
      }),
      { numRuns: propRuns() },
    );
  });

  it('any single-byte change of an encoded entry is rejected', () => {
    fc.assert(
      fc.property(
        loggedArb(fc.integer({ min: 1, max: 2 ** 40 })),
        fc.nat(),
        fc.nat(),
        (logged, index, delta) => {
          const bytes = encodeEntry(toEntry(logged));
          expect(() => decodeEntry(mutate(bytes, index, delta))).toThrow(CodecError);
        },
      ),
      { numRuns: propRuns() },
    );
  });

  it('any single-byte change of an encoded batch is rejected', () => {
    fc.assert(
      fc.property(batchArb, fc.nat(), fc.nat(), (batch, index, delta) => {
        const bytes = encodeBatch(batch.map(toEntry));
        expect(() => decodeBatch(mutate(bytes, index, delta))).toThrow(CodecError);
      }),
      { numRuns: propRuns() },
    );
  });

  it('truncated or extended bytes are rejected', () => {
    fc.assert(
      fc.property(
        batchArb,
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        (batch, cut, extra) => {
          const bytes = encodeBatch(batch.map(toEntry));
          expect(() => decodeBatch(bytes.subarray(0, cut % bytes.length))).toThrow(CodecError);
          expect(() => decodeBatch(new Uint8Array([...bytes, ...extra]))).toThrow(CodecError);
        },
      ),
      { numRuns: propRuns() },
    );
  });
});
