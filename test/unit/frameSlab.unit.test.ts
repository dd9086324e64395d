// New entries' frames are cut from a shared slab (codec.ts): every frame and payload must stay
// what was encoded, whatever is framed after it, across slab boundaries, with multi-byte text,
// and after a refused entry.
import { describe, expect, it } from 'vitest';
import {
  CodecError,
  decodeBatch,
  decodeEntry,
  encodeBatch,
  encodeEntry,
  frameEntry,
} from '../../src/domain/log/codec.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../src/domain/model/types.ts';

function putStart(seq: number, key: string): LoggedEvent {
  return {
    seq,
    epoch: 3,
    ts: 1_700_000_000_000 + seq,
    event: {
      op: 'PUT_START',
      key,
      size: 4096,
      replicas: [
        {
          segmentId: 'seg-ü',
          nodeId: 'n1',
          offset: seq * 4096,
          length: 4096,
          status: 'processing',
        },
      ],
    },
    origin: { sessionId: 'a'.repeat(32), requestNo: seq, oldestPending: 1 },
  };
}

describe('frames cut from the shared slab', () => {
  it('every frame of thousands of entries (several slabs) still decodes to its own event', () => {
    const logged: LoggedEvent[] = [];
    const entries: OpLogEntry[] = [];
    for (let seq = 1; seq <= 5000; seq++) {
      // keys of varying length, some multi-byte (2, 3 and 4 UTF-8 bytes a character)
      const key = `k/${seq}/${'é'.repeat(seq % 7)}${'€'.repeat(seq % 3)}${seq % 11 === 0 ? '😀' : ''}`;
      const one = putStart(seq, key);
      logged.push(one);
      entries.push(toEntry(one));
    }
    for (const [i, entry] of entries.entries()) {
      expect(fromEntry(decodeEntry(encodeEntry(entry)))).toEqual(logged[i]);
      expect(fromEntry(entry)).toEqual(logged[i]);
    }
    for (let at = 0; at < entries.length; at += 100) {
      const batch = entries.slice(at, at + 100);
      expect(decodeBatch(encodeBatch(batch)).map(fromEntry)).toEqual(logged.slice(at, at + 100));
    }
  });

  it('a refused entry leaves the next frame whole', () => {
    expect(() =>
      frameEntry({ seq: 0, epoch: 1, ts: 1, op: 'PUT_END', key: 'bad' }, '{"op":"PUT_END"}'),
    ).toThrow(CodecError);
    const entry = toEntry(putStart(7, 'after-a-refusal'));
    expect(fromEntry(decodeEntry(encodeEntry(entry)))).toEqual(putStart(7, 'after-a-refusal'));
  });

  it('an entry larger than a slab gets a frame of its own size', () => {
    const key = 'big';
    const text = JSON.stringify({ op: 'PUT_END', key, pad: 'x'.repeat(300 * 1024) });
    const entry = frameEntry({ seq: 1, epoch: 1, ts: 1, op: 'PUT_END', key }, text);
    expect(new TextDecoder().decode(entry.payload)).toBe(text);
    expect(decodeEntry(encodeEntry(entry)).payload).toEqual(entry.payload);
  });
});
