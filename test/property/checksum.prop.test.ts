import CRC32 from 'crc-32';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { objectChecksum } from '../../src/domain/log/checksum.ts';
import {
  addJsonString,
  addNumber,
  addString,
  crcDone,
  crcText,
} from '../../src/domain/log/crc32Text.ts';
import type { ObjectRecord } from '../../src/domain/model/types.ts';
import { propRuns } from './runs.ts';

// The checksum is defined as CRC32 of a canonical text (DESIGN.md: verification); the code
// hashes the pieces without building the text. These properties hold it to the definition.

/** The definition, built as text and hashed by the `crc-32` package. */
function checksumByText(record: ObjectRecord): number {
  let text = `${record.size}`;
  for (const r of record.replicas) {
    text += `|${JSON.stringify(r.segmentId)},${JSON.stringify(r.nodeId)},${r.offset},${r.length},${r.status === 'complete' ? 'c' : 'p'}`;
  }
  return CRC32.str(text, 0) >>> 0;
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

describe('checksum hashing without building the text', () => {
  it('addString / addJsonString / addNumber equal CRC32 of the text', () => {
    fc.assert(
      fc.property(textArb, numberArb, textArb, (a, n, b) => {
        const c = addString(addNumber(addJsonString(crcText, a), n), b);
        expect(crcDone(c)).toBe(CRC32.str(`${JSON.stringify(a)}${n}${b}`, 0) >>> 0);
      }),
      { numRuns: propRuns(1000) },
    );
  });

  it('objectChecksum equals CRC32 of the canonical text', () => {
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
    fc.assert(
      fc.property(recordArb, (record) => {
        expect(objectChecksum(record)).toBe(checksumByText(record));
      }),
      { numRuns: propRuns(1000) },
    );
  });
});
