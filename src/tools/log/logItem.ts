/**
 * What a log source (logSource.ts, fileLogSource.ts) yields and how it fails: the items of
 * `understudy export` and `understudy replay`, in log order.
 */
import type { OpLogEntry } from '../../domain/log/entry.ts';
import type { LoggedEvent, MetadataState } from '../../domain/model/types.ts';
import type { CheckpointInfo } from '../../ports/checkpointStore.ts';
import type { BaseRequest } from './checkpointBase.ts';
import type { CorruptEntryError, EntryPosition } from './exportFormat.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/** One item of a log source: a verified entry, or a bad one with its position. */
export type LogItem =
  | {
      readonly kind: 'entry';
      readonly entry: OpLogEntry;
      readonly logged: LoggedEvent;
      readonly position: EntryPosition;
    }
  | { readonly kind: 'bad'; readonly error: CorruptEntryError }
  /**
   * A well-formed entry no elected primary wrote (see logReader.ts): no part of the log, and
   * no loss either (the entry of that seq may follow).
   */
  | {
      readonly kind: 'foreign';
      readonly entry: OpLogEntry;
      readonly logged: LoggedEvent;
      readonly error: CorruptEntryError;
    }
  /**
   * The read starts from this checkpoint: its state (checked against its digest) is the state
   * at `checkpoint.appliedSeq`, and the entries that follow begin right after it. First, when
   * there is one.
   */
  | {
      readonly kind: 'base';
      readonly checkpoint: CheckpointInfo;
      readonly state: MetadataState;
    }
  /** Something the operator should be told about the range read (earlier entries trimmed). */
  | { readonly kind: 'note'; readonly text: string };

/** A readable OpLog. */
export interface LogSource {
  /** "stream UNDERSTUDY_C_OPLOG on nats://..." or "file x.ndjson", for messages. */
  readonly description: string;
  /**
   * The entries `fromSeq..toSeq` (default: to the end of the log as it is when called),
   * and every bad entry met on the way, in log order. A bad entry whose seq is unreadable
   * is yielded where it stands. With `base`, the read starts from a checkpoint when one fits
   * (see checkpointBase.ts): a `base` item first, then the entries after it, which may begin
   * below `fromSeq`. Fails with {@link LogUnavailableError} when the log cannot be read at all
   * or cannot give the range asked for.
   */
  read(fromSeq: number, toSeq?: number, base?: BaseRequest): AsyncIterable<LogItem>;
  close(): Promise<void>;
}

/** The log cannot be read: no server, no stream, no file. Retryable: the log may come back. */
export class LogUnavailableError extends UnderstudyError {
  override readonly name = 'LogUnavailableError';
  readonly code = 'LOG_UNAVAILABLE';
  override readonly retryable = true;
  constructor(
    /** What was being read (the source's description). */
    readonly source: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${source}: ${message}`, options);
  }
}

/**
 * Stream messages were trimmed away (a checkpoint trims the stream below itself) while a read
 * was passing them: what it read has a hole. Reading again starts at the stream's new first
 * message, or at a checkpoint.
 */
export class StreamTrimmedError extends LogUnavailableError {
  constructor(
    source: string,
    /** The first and last stream message the read lost. */
    readonly lost: { readonly from: number; readonly to: number },
    /** The stream's first message when the hole was found. */
    readonly firstStreamSeq: number,
  ) {
    super(
      source,
      `stream messages ${lost.from}..${lost.to} were trimmed away while the read was passing them (the stream now starts at message ${firstStreamSeq}; a checkpoint trims the stream below itself): read again, or from a checkpoint`,
    );
  }
}
