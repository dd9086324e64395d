// The one search for "the stream message holding entry N", shared by the NATS OpLog (where a
// follower starts) and the log tools (where export and replay start reading): gaps (messages
// undecodable or gone) are passed over and belong to the next message holding entries.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  findMessageHoldingSeq,
  type StreamMessageReader,
} from '../../src/adapters/nats/streamSearch.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';

/** One stream message: the entry seqs it holds, or 'gap' (undecodable or trimmed). */
type Message = readonly number[] | 'gap';

const entry = (seq: number): OpLogEntry => ({
  seq,
  epoch: 1,
  ts: 0,
  op: 'EVICTION',
  key: '',
  payload: new Uint8Array(),
  checksum: 0,
  prefixHash: 0,
});

/** A reader over `messages` stored from stream seq `base`, counting its reads. */
function fakeStream(messages: readonly Message[], base = 1) {
  const reads: number[] = [];
  const reader: StreamMessageReader = {
    entriesAt(streamSeq) {
      reads.push(streamSeq);
      const message = messages[streamSeq - base];
      return Promise.resolve(
        message === undefined || message === 'gap' ? undefined : message.map(entry),
      );
    },
  };
  return { reader, reads, first: base, last: base + messages.length - 1 };
}

/** Consecutive batches of `size` entries from seq 1, `count` messages. */
function batches(count: number, size: number): Message[] {
  return Array.from({ length: count }, (_, i) =>
    Array.from({ length: size }, (_, j) => i * size + j + 1),
  );
}

/** The answer by reading every message: the last holding entries with a head <= seq. */
function linearAnswer(messages: readonly Message[], seq: number, base = 1): number | undefined {
  let answer: number | undefined;
  messages.forEach((message, i) => {
    if (message !== 'gap' && message.length > 0 && (message[0] ?? Infinity) <= seq) {
      answer = base + i;
    }
  });
  return answer;
}

describe('findMessageHoldingSeq', () => {
  it('finds the message holding each entry with a logarithmic number of reads', async () => {
    const messages = batches(1_000, 10); // entries 1..10000 at stream seqs 1..1000
    for (const seq of [1, 10, 11, 5_000, 5_001, 9_999, 10_000]) {
      const { reader, reads, first, last } = fakeStream(messages);
      const found = await findMessageHoldingSeq(reader, seq, first, last);
      expect(found).toBe(Math.ceil(seq / 10));
      expect(reads.length).toBeLessThanOrEqual(12);
    }
  });

  it('passes over gaps instead of falling back to the start of the stream', async () => {
    // Stream seqs 1..100 hold entries 1..1000; seqs 50 (undecodable) and 51 (trimmed) are
    // gaps that the logSource search used to answer with "read from stream seq 1".
    const messages: Message[] = batches(100, 10);
    messages[49] = 'gap';
    messages[50] = 'gap';
    const { reader, reads, first, last } = fakeStream(messages);
    expect(await findMessageHoldingSeq(reader, 905, first, last)).toBe(91);
    expect(reads.length).toBeLessThanOrEqual(20);
  });

  it('starts before a gap that may hold the entry, so the gap is read and reported', async () => {
    // Entries 21..30 were in stream seq 3, which no longer decodes.
    const messages: Message[] = [...batches(2, 10), 'gap', [31]];
    const { reader, first, last } = fakeStream(messages);
    expect(await findMessageHoldingSeq(reader, 25, first, last)).toBe(2);
    expect(await findMessageHoldingSeq(reader, 31, first, last)).toBe(4);
  });

  it('is undefined when no message starts at or before the entry', async () => {
    const { reader, first, last } = fakeStream(['gap', [11, 12], [13]], 7);
    expect(await findMessageHoldingSeq(reader, 10, first, last)).toBeUndefined();
    expect(await findMessageHoldingSeq(reader, 11, first, last)).toBe(8);
    const gaps = fakeStream(['gap', 'gap', 'gap']);
    expect(await findMessageHoldingSeq(gaps.reader, 1, gaps.first, gaps.last)).toBeUndefined();
  });

  it('answers past the last entry with the last message holding entries', async () => {
    const { reader, first, last } = fakeStream([[1, 2], [3], 'gap']);
    expect(await findMessageHoldingSeq(reader, 99, first, last)).toBe(2);
  });

  it('lets a failed read reject rather than guess', async () => {
    const reader: StreamMessageReader = {
      entriesAt: () => Promise.reject(new Error('not connected')),
    };
    await expect(findMessageHoldingSeq(reader, 5, 1, 10)).rejects.toThrow('not connected');
  });

  it('agrees with reading every message, for any layout of batches and gaps', async () => {
    const layout = fc.array(fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(0)), {
      minLength: 1,
      maxLength: 40,
    });
    await fc.assert(
      fc.asyncProperty(layout, fc.integer({ min: 0, max: 200 }), async (sizes, seq) => {
        // A size of 0 is a gap that swallowed 3 entries (undecodable or trimmed).
        let next = 1;
        const messages: Message[] = sizes.map((size) => {
          if (size === 0) {
            next += 3;
            return 'gap';
          }
          const held = Array.from({ length: size }, (_, i) => next + i);
          next += size;
          return held;
        });
        const { reader, first, last } = fakeStream(messages, 5);
        expect(await findMessageHoldingSeq(reader, seq, first, last)).toBe(
          linearAnswer(messages, seq, 5),
        );
      }),
    );
  });
});
