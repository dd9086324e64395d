/**
 * The items of the stream messages a read of entries `fromSeq..toSeq` meets, shared by the
 * stream sources (logSource.ts reads JetStream, opLogSource.ts the OpLog port): a message that
 * does not decode is one `bad` item; each entry in range is an `entry` item, or a `bad` one when
 * its payload does not decode. Which entries count is the reader's part (logReader.ts).
 */
import { CodecError } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import { fromEntry } from '../../domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../domain/model/types.ts';
import { CorruptEntryError } from './exportFormat.ts';
import type { LogItem } from './logItem.ts';

/** One read's position in the stream: where the range ends, and the next entry seq in order. */
export class MessageItems {
  #expected: number | undefined;
  #done = false;

  constructor(
    private readonly fromSeq: number,
    private readonly toSeq: number | undefined,
  ) {}

  /** True once the read has passed `toSeq`: the caller stops reading. */
  get done(): boolean {
    return this.#done;
  }

  /** The seq of the next entry in order (undefined before the first). */
  get expected(): number | undefined {
    return this.#expected;
  }

  /** Stream message `streamSeq` is no batch of entries: why. */
  undecodable(streamSeq: number, reason: string, cause?: unknown): LogItem {
    return {
      kind: 'bad',
      error: new CorruptEntryError(
        { streamSeq },
        `stream message: ${reason}`,
        cause === undefined ? undefined : { cause },
      ),
    };
  }

  /** Stream messages `from..to` are gone from the middle of the stream (deleted): whatever they held. */
  static missing(lost: { readonly from: number; readonly to: number }): LogItem {
    return {
      kind: 'bad',
      error: new CorruptEntryError(
        { streamSeq: lost.from },
        `stream messages ${lost.from}..${lost.to} are missing (deleted from the stream)`,
      ),
    };
  }

  /** The items of the entries of stream message `streamSeq`, in order. */
  *entries(entries: readonly OpLogEntry[], streamSeq: number): Generator<LogItem> {
    for (const entry of entries) {
      if (entry.seq < this.fromSeq) continue;
      const inOrder = entry.seq === (this.#expected ?? entry.seq);
      // Past the range once the next entry in order is (an outsider's entry may carry any seq:
      // it is yielded, and the reader tells it apart).
      if (this.toSeq !== undefined && entry.seq > this.toSeq && inOrder) {
        this.#done = true;
        return;
      }
      if (inOrder) this.#expected = entry.seq + 1;
      const position = { seq: entry.seq, streamSeq };
      let logged: LoggedEvent | undefined;
      let bad: CorruptEntryError | undefined;
      try {
        logged = fromEntry(entry);
      } catch (cause) {
        if (!(cause instanceof CodecError)) throw cause;
        bad = new CorruptEntryError(position, `payload: ${cause.message}`, { cause });
      }
      if (logged !== undefined) yield { kind: 'entry', entry, logged, position };
      else if (bad !== undefined) yield { kind: 'bad', error: bad };
      if (this.toSeq !== undefined && entry.seq === this.toSeq) this.#done = true;
    }
  }
}
