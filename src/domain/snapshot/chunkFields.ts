/**
 * The fields binary chunks are made of (see binaryChunk.ts for the layout): `u8`, big-endian
 * `u32`, `uint` (an unsigned LEB128 varint of a safe integer, at most 8 bytes) and `str` (a uint
 * byte length and UTF-8), written into a growing buffer and read back with every bound checked.
 * Pure: bytes in, bytes out.
 */
import { SnapshotCodecError } from './chunks.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Writes fields from byte `at` on (the bytes before it are the caller's header). */
export class FieldWriter {
  bytes: Uint8Array;

  constructor(
    public at: number,
    estimate: number,
  ) {
    this.bytes = new Uint8Array(Math.max(64, estimate));
  }

  #room(n: number): void {
    const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.at + n));
    bigger.set(this.bytes.subarray(0, this.at));
    this.bytes = bigger;
  }

  u8(n: number): void {
    if (this.at >= this.bytes.length) this.#room(1);
    this.bytes[this.at++] = n;
  }

  u32(n: number): void {
    if (this.at + 4 > this.bytes.length) this.#room(4);
    const b = this.bytes;
    b[this.at] = n >>> 24;
    b[this.at + 1] = (n >>> 16) & 0xff;
    b[this.at + 2] = (n >>> 8) & 0xff;
    b[this.at + 3] = n & 0xff;
    this.at += 4;
  }

  uint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new RangeError(`not a non-negative safe integer: ${n}`);
    if (this.at + 8 > this.bytes.length) this.#room(8);
    const b = this.bytes;
    if (n < 0x80000000) {
      while (n >= 0x80) {
        b[this.at++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
    } else {
      while (n >= 0x80) {
        b[this.at++] = (n % 0x80) | 0x80;
        n = Math.floor(n / 0x80);
      }
    }
    b[this.at++] = n;
  }

  str(s: string): void {
    const length = s.length;
    // ASCII, the usual case, is written char by char; anything else through the encoder. The
    // room covers the length prefix too, so uint() below never moves the buffer.
    if (this.at + length + 10 > this.bytes.length) this.#room(length + 10);
    if (length < 0x4000) {
      const b = this.bytes;
      const start = this.at;
      let at = start + (length < 0x80 ? 1 : 2);
      let i = 0;
      for (; i < length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[at++] = c;
      }
      if (i === length) {
        this.uint(length);
        this.at = at;
        return;
      }
      this.at = start;
    }
    const utf8 = encoder.encode(s);
    this.uint(utf8.length);
    this.#room(utf8.length);
    this.bytes.set(utf8, this.at);
    this.at += utf8.length;
  }
}

/** Throws `SnapshotCodecError` `garbled` saying what is wrong. */
export function garbled(message: string): never {
  throw new SnapshotCodecError('garbled', message);
}

/** Throws `SnapshotCodecError` `truncated`. */
function truncated(): never {
  throw new SnapshotCodecError('truncated', 'the chunk ends inside a field');
}

/** Reads fields from byte `at` on, throwing `SnapshotCodecError` for what does not read. */
export class FieldReader {
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
  ) {}

  u8(): number {
    if (this.at >= this.bytes.length) truncated();
    return this.bytes[this.at++] as number;
  }

  flag(what: string): boolean {
    const b = this.u8();
    if (b > 1) garbled(`${what} is neither 0 nor 1`);
    return b === 1;
  }

  u32(): number {
    if (this.at + 4 > this.bytes.length) truncated();
    const b = this.bytes;
    const n =
      (((b[this.at] as number) << 24) |
        ((b[this.at + 1] as number) << 16) |
        ((b[this.at + 2] as number) << 8) |
        (b[this.at + 3] as number)) >>>
      0;
    this.at += 4;
    return n;
  }

  uint(): number {
    const b = this.bytes;
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.at >= b.length) truncated();
      const byte = b[this.at++] as number;
      n += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (n > Number.MAX_SAFE_INTEGER) garbled('an integer beyond 2^53');
        return n;
      }
      scale *= 0x80;
    }
    return garbled('an integer longer than 8 bytes');
  }

  /** A count of items that take at least `minBytes` each: never more than the bytes left. */
  count(minBytes: number): number {
    const n = this.uint();
    if (n * minBytes > this.bytes.length - this.at) truncated();
    return n;
  }

  str(): string {
    const length = this.uint();
    const b = this.bytes;
    const start = this.at;
    const end = start + length;
    if (end > b.length) truncated();
    this.at = end;
    if (length <= 64) {
      let s = '';
      for (let i = start; i < end; i++) {
        const c = b[i] as number;
        if (c >= 0x80) return this.#utf8(start, end);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.#utf8(start, end);
  }

  #utf8(start: number, end: number): string {
    try {
      return decoder.decode(this.bytes.subarray(start, end));
    } catch (cause) {
      throw new SnapshotCodecError('garbled', 'a string that is not UTF-8', { cause });
    }
  }
}
