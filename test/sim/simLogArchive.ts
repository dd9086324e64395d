import type { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import type { SimClock } from '../../src/adapters/memory/simClock.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../src/domain/model/types.ts';
import type { Clock } from '../../src/ports/clock.ts';
import type { OpLog } from '../../src/ports/opLog.ts';
import { EntryKeys } from './oplogKeys.ts';

/**
 * The whole log of a simulated cluster as the checks read it: what retention trimmed from the
 * stream (kept before the trim), what the stream holds, and when each entry was first handed
 * to a writer; never what an outsider published (see {@link SimLogArchive.outsider}).
 */
export class SimLogArchive {
  /** Entries retention trimmed from the stream, in seq order (the checks read the whole log). */
  readonly #trimmed: OpLogEntry[] = [];
  /**
   * When each entry (`epoch/seq`) was first handed to a writer, on its writer's monotonic clock:
   * the time within an epoch that `ts` (logged time, held still by a wall clock behind it) is not.
   */
  readonly appendedAt = new Map<string, number>();
  /** Which OpLog key each entry was written under ({@link SimWorld.wrongKey}). */
  readonly entryKeys = new EntryKeys();
  /** The same on the simulated clock (an eviction's invocation in the history). */
  readonly appendedSimAt = new Map<string, number>();

  /** Stream messages an outsider published: no part of the log. */
  readonly #outsiderMessages = new Set<number>();

  constructor(
    readonly store: MemoryLogStore,
    readonly sim: SimClock,
  ) {}

  /**
   * The whole log: what retention trimmed, then what the stream holds; never what an outsider
   * published ({@link SimLogArchive.outsider}).
   */
  entries(): OpLogEntry[] {
    const held =
      this.#outsiderMessages.size === 0
        ? this.store.entries()
        : this.store
            .messages()
            .filter((m) => !this.#outsiderMessages.has(m.streamSeq))
            .flatMap((m) => m.entries);
    return this.#trimmed.length === 0 ? held : [...this.#trimmed, ...held];
  }

  /**
   * Publishes to the OpLog subject as an outsider would (or a disk corrupts): `garbage` that does
   * not decode; a forged `fence` (an EPOCH of no election); an entry stamped with an epoch
   * nobody was elected at (`foreign`) or with an earlier one (`stale`). Its seq is `ahead` past
   * the log's last entry; `current` is the epoch last fenced into the log. Its message takes
   * the next stream slot: the primary's next append is fenced.
   */
  outsider(
    what: 'garbage' | 'fence' | 'foreign' | 'stale',
    ahead: number,
    key: string,
    current: number,
  ): void {
    if (what === 'garbage') {
      this.#outsiderMessages.add(this.store.publishUndecodable("an outsider's garbage"));
      return;
    }
    const log = this.entries();
    const seq = (log[log.length - 1]?.seq ?? 0) + ahead;
    const forged: LoggedEvent =
      what === 'fence'
        ? { seq, epoch: 1e9, ts: 0, event: { op: 'EPOCH', epoch: 1e9, nodeId: 'n1' } }
        : {
            seq,
            epoch: what === 'foreign' ? current + 1e6 : current - 1,
            ts: 0,
            event: { op: 'REMOVE', key },
          };
    this.#outsiderMessages.add(this.store.publishOutsider([toEntry(forged)]));
  }

  /**
   * `opLog`, keeping what its trims remove in {@link SimLogArchive.#trimmed} first, and noting when
   * each entry was first handed to a writer, on the clock of the node that wrote it.
   */
  archiving(opLog: OpLog, clock: Clock, keyId: string): OpLog {
    return {
      openWriter: (options) => {
        const writer = opLog.openWriter(options);
        return {
          append: (entries) => {
            this.entryKeys.written(entries, keyId);
            for (const e of entries) {
              const key = `${e.epoch}/${e.seq}`;
              if (!this.appendedAt.has(key)) this.appendedAt.set(key, clock.monotonicNow());
              if (!this.appendedSimAt.has(key)) this.appendedSimAt.set(key, this.sim.now());
            }
            return writer.append(entries);
          },
          get fenced() {
            return writer.fenced;
          },
          close: () => writer.close(),
        };
      },
      follow: (fromSeq, options) => opLog.follow(fromSeq, options),
      bounds: () => opLog.bounds(),
      close: () => opLog.close(),
      trimThrough: (streamSeq) => {
        for (const message of this.store.messages()) {
          if (message.streamSeq <= streamSeq && !this.#outsiderMessages.has(message.streamSeq)) {
            this.#trimmed.push(...message.entries);
          }
        }
        return opLog.trimThrough?.(streamSeq) ?? Promise.resolve();
      },
    };
  }
}
