/**
 * An export file (or `-` for stdin) as a log source: lines are verified as they are read, and
 * the checkpoint an export starts from (version 2) is rebuilt and checked against its digest.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CheckpointError, CheckpointReader } from '../../domain/snapshot/checkpoint.ts';
import type { CheckpointInfo } from '../../ports/checkpointStore.ts';
import type { BaseRequest } from './checkpointBase.ts';
import {
  CorruptEntryError,
  parseExportLine,
  type ParsedCheckpointFrame,
  type ParsedLine,
} from './exportFormat.ts';
import { LogUnavailableError, type LogItem, type LogSource } from './logItem.ts';

/** Whether the export's checkpoint at S serves `base` (a state at or after S, any range). */
function fits(checkpoint: CheckpointInfo, base: BaseRequest | undefined): boolean {
  if (base === undefined) return false;
  if (base.named !== undefined) {
    return base.named === checkpoint.name || base.named === String(checkpoint.appliedSeq);
  }
  return base.mode === 'range' || checkpoint.appliedSeq <= (base.atSeq ?? Infinity);
}

/** Collects an export's checkpoint frames and rebuilds its state. */
class EmbeddedCheckpoint {
  readonly #reader: CheckpointReader;
  constructor(
    readonly checkpoint: CheckpointInfo,
    readonly line: number,
  ) {
    this.#reader = new CheckpointReader(checkpoint);
  }
  #next = 0;

  add(frame: ParsedCheckpointFrame): void {
    if (frame.checkpoint.name !== this.checkpoint.name || frame.chunk !== this.#next) {
      throw new CorruptEntryError(
        { line: frame.line },
        `checkpoint line: chunk ${frame.chunk} of ${frame.checkpoint.name} where chunk ${this.#next} of ${this.checkpoint.name} was due`,
      );
    }
    this.#next += 1;
    this.#wrap(frame.line, () => this.#reader.add(frame.frame));
  }

  /** The base item; throws CorruptEntryError when the frames do not rebuild the state. */
  finish(line: number): LogItem {
    const state = this.#wrap(line, () => this.#reader.finish());
    return { kind: 'base', checkpoint: this.checkpoint, state };
  }

  #wrap<T>(line: number, run: () => T): T {
    try {
      return run();
    } catch (cause) {
      if (!(cause instanceof CheckpointError)) throw cause;
      throw new CorruptEntryError(
        { line },
        `checkpoint ${this.checkpoint.name}: ${cause.message}`,
        { cause },
      );
    }
  }
}

/** An export file (or `-` for stdin) as a log source. Lines are verified as they are read. */
export function fileLogSource(path: string): LogSource {
  const description = path === '-' ? 'stdin' : `file ${path}`;
  return {
    description,
    async *read(fromSeq: number, toSeq?: number, base?: BaseRequest): AsyncIterable<LogItem> {
      let input: NodeJS.ReadableStream;
      if (path === '-') {
        input = process.stdin;
      } else {
        const stream = createReadStream(path, { encoding: 'utf8' });
        try {
          await new Promise<void>((resolve, reject) => {
            stream.once('open', () => resolve());
            stream.once('error', reject);
          });
        } catch (cause) {
          throw new LogUnavailableError(description, 'cannot be read', { cause });
        }
        input = stream;
      }
      const lines = createInterface({ input, crlfDelay: Infinity });
      let line = 0;
      const texts = (async function* () {
        try {
          yield* lines;
        } catch (cause) {
          throw new LogUnavailableError(description, `read failed: ${String(cause)}`, { cause });
        }
      })();
      /** The export's checkpoint being rebuilt (only when it serves `base`). */
      let embedded: EmbeddedCheckpoint | undefined;
      /** Entries before this seq are folded too: they follow the checkpoint read. */
      let from = fromSeq;
      /** Whether an entry or a checkpoint was yielded. */
      let yielded = false;
      try {
        for await (const text of texts) {
          line += 1;
          let parsed: ParsedLine | undefined;
          try {
            parsed = parseExportLine(text, line);
            if (parsed?.kind === 'checkpoint') {
              if (embedded === undefined && fits(parsed.checkpoint, base)) {
                embedded = new EmbeddedCheckpoint(parsed.checkpoint, line);
              }
              embedded?.add(parsed);
              continue;
            }
            if (embedded !== undefined && parsed?.kind === 'entry') {
              const item = embedded.finish(line);
              from = Math.min(from, embedded.checkpoint.appliedSeq + 1);
              embedded = undefined;
              yielded = true;
              yield item;
            }
          } catch (error) {
            if (!(error instanceof CorruptEntryError)) throw error;
            if (error.seq !== undefined && error.seq < from) continue;
            if (error.seq !== undefined && toSeq !== undefined && error.seq > toSeq) break;
            yield { kind: 'bad', error };
            continue;
          }
          if (parsed === undefined || parsed.kind !== 'entry') continue;
          const seq = parsed.entry.seq;
          if (seq < from) continue;
          if (toSeq !== undefined && seq > toSeq) {
            if (!yielded) {
              // Nothing of the range is here: say where the file begins, not "ends at seq 0".
              const begins = `it begins at seq ${seq}; earlier entries are not in it`;
              if (base?.mode === 'state') {
                throw new LogUnavailableError(
                  description,
                  `the state at seq ${toSeq} is not in it: ${begins}`,
                );
              }
              yield { kind: 'note', text: `${description}: ${begins}` };
            }
            break;
          }
          yielded = true;
          yield {
            kind: 'entry',
            entry: parsed.entry,
            logged: parsed.logged,
            position: { seq, line },
          };
          if (toSeq !== undefined && seq === toSeq) break;
        }
        if (embedded !== undefined) {
          try {
            yield embedded.finish(line);
          } catch (error) {
            if (!(error instanceof CorruptEntryError)) throw error;
            yield { kind: 'bad', error };
          }
        }
      } finally {
        lines.close();
        if (input !== process.stdin) (input as ReturnType<typeof createReadStream>).destroy();
      }
    },
    close: () => Promise.resolve(),
  };
}
