import CRC32 from 'crc-32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  objectChecksum,
  recordsDigest,
  recordVerifyHash,
  sessionChecksum,
} from '../../src/domain/log/checksum.ts';
import { CrcText } from '../../src/domain/log/crc32Text.ts';
import type { ObjectRecord, Replica, SessionRecord } from '../../src/domain/model/types.ts';
import { propRuns } from './runs.ts';

// The checksum is defined as CRC32 of a canonical text (DESIGN.md: verification); the code
// hashes the pieces without building the text. These properties hold it to the definition.

/** A placement's canonical text, as objectChecksum and sessionChecksum document it. */
function replicasText(replicas: readonly Replica[]): string {
  return replicas
    .map(
      (r) =>
        `|${JSON.stringify(r.segmentId)},${JSON.stringify(r.nodeId)},${r.offset},${r.length},${r.status === 'complete' ? 'c' : 'p'}`,
    )
    .join('');
}

/** The definition, built as text and hashed by the `crc-32` package. */
function checksumByText(record: ObjectRecord): number {
  return CRC32.str(`${record.size}${replicasText(record.replicas)}`, 0) >>> 0;
}

const textArb = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', '"', '\\', '\u0000', '\u007f', '\u0080', 'ключ', '🔑', '\ud800', 'a"b\\c'),
);
const numberArb = fc.oneof(
  fc.nat(),
  fc.maxSafeNat(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, 9, 10, 2 ** 53, -0, 1e21, Number.NaN),
);

const replicaArb = fc.record({
  segmentId: textArb,
  nodeId: textArb,
  offset: numberArb,
  length: numberArb,
  status: fc.constantFrom('complete' as const, 'processing' as const),
});
const recordArb = fc.record({
  key: textArb,
  size: numberArb,
  lastSeq: fc.nat(),
  replicas: fc.array(replicaArb, { maxLength: 4 }),
});

/** A session's canonical text (the definition), as sessionChecksum documents it. */
function sessionByText(session: SessionRecord): number {
  let text = `${JSON.stringify(session.sessionId)}|${session.oldestPending}|${session.lastSeq}|${session.lastTs}`;
  for (const r of session.results) {
    text += `;${r.requestNo},${r.seq},${r.op},${JSON.stringify(r.key)}`;
    text += replicasText(r.replicas ?? []);
  }
  return CRC32.str(text, 0) >>> 0;
}

describe('checksum hashing without building the text', () => {
  it('string / jsonString / number / char equal CRC32 of the text, from any seed', () => {
    const text = new CrcText();
    const piece = fc.oneof(
      // A raw string is hashed as UTF-8 the way the package encodes it, which pairs a lone
      // surrogate with the character after it: raw strings are well formed where they are
      // hashed (operation names; JSON.stringify escapes lone surrogates).
      textArb
        .filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s)
        .map((s) => ({ kind: 'string' as const, s })),
      textArb.map((s) => ({ kind: 'json' as const, s })),
      numberArb.map((n) => ({ kind: 'number' as const, n })),
      fc.integer({ min: 0, max: 0x7f }).map((code) => ({ kind: 'char' as const, code })),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 40 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        // A long string now and then, past the buffer (1024 bytes) and across its end.
        fc.nat({ max: 3000 }),
        (pieces, seed, long) => {
          let expected = '';
          text.start(seed);
          for (const p of [...pieces, { kind: 'string' as const, s: 'x'.repeat(long) }]) {
            if (p.kind === 'string') text.string(p.s);
            else if (p.kind === 'json') text.jsonString(p.s);
            else if (p.kind === 'number') text.number(p.n);
            else text.char(p.code);
            expected +=
              p.kind === 'string'
                ? p.s
                : p.kind === 'json'
                  ? JSON.stringify(p.s)
                  : p.kind === 'number'
                    ? `${p.n}`
                    : String.fromCharCode(p.code);
          }
          expect(text.done()).toBe(CRC32.str(expected, seed) >>> 0);
        },
      ),
      { numRuns: propRuns(1000) },
    );
  });

  it('objectChecksum equals CRC32 of the canonical text', () => {
    fc.assert(
      fc.property(recordArb, (record) => {
        expect(objectChecksum(record)).toBe(checksumByText(record));
      }),
      { numRuns: propRuns(1000) },
    );
  });

  it('a shard digest and a verify hash equal CRC32 of their texts', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 30 }), (records) => {
        const sorted = [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
        const text = sorted.map((r) => `${JSON.stringify(r.key)}=${checksumByText(r)};`).join('');
        expect(recordsDigest([...records])).toBe(
          records.length === 0 ? 0 : CRC32.str(text, 0) >>> 0,
        );
        for (const r of records) {
          expect(recordVerifyHash(r)).toBe(CRC32.str(r.key, checksumByText(r)) >>> 0);
        }
      }),
      { numRuns: propRuns(300) },
    );
  });

  it('sessionChecksum equals CRC32 of the canonical text', () => {
    const resultArb = fc.record(
      {
        requestNo: fc.nat(),
        seq: fc.nat(),
        op: fc.constantFrom('PUT_START' as const, 'PUT_END' as const, 'REMOVE' as const),
        key: textArb,
        replicas: fc.array(replicaArb, { maxLength: 3 }),
      },
      { requiredKeys: ['requestNo', 'seq', 'op', 'key'] },
    );
    const sessionArb = fc.record({
      sessionId: textArb,
      oldestPending: fc.nat(),
      lastSeq: fc.nat(),
      lastTs: numberArb,
      results: fc.array(resultArb, { maxLength: 5 }),
    });
    fc.assert(
      fc.property(sessionArb, (session) => {
        expect(sessionChecksum(session)).toBe(sessionByText(session));
      }),
      { numRuns: propRuns(500) },
    );
  });
});
