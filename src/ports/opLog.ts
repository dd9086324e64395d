import type { OpLogEntry } from '../domain/log/entry.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** Where a message sits in the stream, and which entries it holds. */
export interface AppendAck {
  /** The stream sequence the message was stored at. */
  readonly streamSeq: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** One stream message as a follower sees it: a batch of consecutive entries. */
export interface LogBatch {
  readonly streamSeq: number;
  readonly entries: readonly OpLogEntry[];
  /**
   * Set when stream message `streamSeq` is not a batch of entries (it does not decode: a
   * corrupt message, or bytes an outsider published): why. `entries` is then empty. Such a
   * message is no part of the log (the entries' own contiguous seqs define it); a follower
   * delivers it only so that it can be reported, and goes on after it.
   */
  readonly undecodable?: string;
  /**
   * Set with `undecodable` when the message names another OpLog key than this log's as the one
   * it is signed under: that key's id (see `oplogKeyId`). An outsider can claim any; the
   * cluster's record tells whether this node's key is the one that is out of date.
   */
  readonly signedUnder?: string;
}

/** Where a follower starts (see {@link OpLog.follow}). */
export interface FollowOptions {
  readonly afterStreamSeq?: number;
}

/** The first and last entry the stream still retains (both 0 when it holds none). */
export interface LogBounds {
  readonly firstSeq: number;
  readonly lastSeq: number;
  /**
   * The stream's last sequence: that of the last message ever stored, even when the stream
   * holds none now (trimmed or purged); 0 only for a stream never written.
   */
  readonly lastStreamSeq: number;
}

/**
 * The cluster's operation log.
 *
 * Promises: entries are stored in append order; a message is stored only when the stream's
 * last sequence equals the sequence the writer expected (fencing), so two writers can never
 * both extend one history; a follower sees every stored message after its start exactly once,
 * in stream order (the writers' entries in seq order), and a message that does not decode as a
 * batch with `undecodable` set, which it skips.
 * An undecodable message takes a stream slot (so it fences the writer that expected that slot)
 * but holds no entry: `bounds` looks past it.
 */
export interface OpLog {
  /**
   * Opens a fenced writer. Its first message is stored only if the stream's last message is
   * `expectedLastStreamSeq`; each later message only right after the writer's previous one.
   */
  openWriter(options: { readonly expectedLastStreamSeq: number }): OpLogWriter;
  /**
   * Follows the log from entry `fromSeq` on, message by message in stream order, until
   * `close()` or an error: every message after the first one holding `fromSeq`, with entries
   * before `fromSeq` left out, whatever seqs their entries carry (an outsider's may carry any:
   * telling the log's entries from foreign ones is the reader's part). With `afterStreamSeq`
   * (the stream message that held entry `fromSeq - 1`, when the reader knows it), it starts
   * right after that message instead of where the entries' seqs point. Fails with
   * {@link NotRetainedError} when `fromSeq` (or the message after `afterStreamSeq`) is no
   * longer retained.
   */
  follow(fromSeq: number, options?: FollowOptions): LogFollower;
  /** The retained range, read now from the stream. */
  bounds(): Promise<LogBounds>;
  /**
   * Retention: removes every message up to and including stream message `streamSeq` (the one
   * holding the last entry of a verified checkpoint), nothing newer; the stream's last
   * sequence stays. A log without it keeps everything.
   */
  trimThrough?(streamSeq: number): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}

/**
 * Appends for one primary. Appends are pipelined (many in flight) and group-committed (the
 * entries handed over at one moment may share a message). Entries must be contiguous across
 * calls.
 */
export interface OpLogWriter {
  /**
   * Resolves once every entry is acknowledged by the stream. Rejects with
   * {@link FencedError} when another writer has appended: then this and every later append
   * reject too. Never resolves for an entry whose storage is not confirmed. Rejects with
   * {@link AppendOrderError} (nothing stored) when the entries do not follow on, and with
   * {@link OpLogClosedError} after `close()`.
   */
  append(entries: readonly OpLogEntry[]): Promise<AppendAck>;
  /** True once an append was rejected by the fence; every later append rejects. */
  readonly fenced: boolean;
  /** Stops accepting appends; appends in flight still settle. */
  close(): Promise<void>;
}

/** An async iterable of batches that can be stopped. */
export interface LogFollower extends AsyncIterable<LogBatch> {
  close(): void;
}

/** Another writer extended the log: this writer's view of the stream is stale. */
export class FencedError extends UnderstudyError {
  override readonly name = 'FencedError';
  readonly code = 'FENCED';
  override readonly retryable = true;
  constructor(
    /** The stream sequence this writer expected to be last. */
    readonly expectedStreamSeq: number,
    /** The stream's real last sequence, when the server said it. */
    readonly actualStreamSeq: number | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `fenced: expected last stream seq ${expectedStreamSeq}, stream is at ${actualStreamSeq ?? 'unknown'}`,
      options,
    );
  }
}

/** The stream no longer retains the requested entry: the node must full-sync. */
export class NotRetainedError extends UnderstudyError {
  override readonly name = 'NotRetainedError';
  readonly code = 'NOT_RETAINED';
  constructor(
    readonly requestedSeq: number,
    readonly firstRetainedSeq: number,
    options?: ErrorOptions,
  ) {
    super(`entry ${requestedSeq} is no longer retained (first is ${firstRetainedSeq})`, options);
  }
}

/** An append whose acknowledgement never came and whose fate could not be confirmed. */
export class AmbiguousAppendError extends UnderstudyError {
  override readonly name = 'AmbiguousAppendError';
  readonly code = 'AMBIGUOUS_APPEND';
  override readonly retryable = true;
  constructor(
    readonly firstSeq: number,
    readonly lastSeq: number,
    options?: ErrorOptions,
  ) {
    super(`append of entries ${firstSeq}..${lastSeq} could not be confirmed`, options);
  }
}

/**
 * An append that breaks the writer's rules (empty, or entries not contiguous with each other
 * or with the log's last entry); nothing was stored. A caller bug: not retryable.
 */
export class AppendOrderError extends UnderstudyError {
  override readonly name = 'AppendOrderError';
  readonly code = 'APPEND_ORDER';
  override readonly retryable = false;
  constructor(
    /** The entry seq that was due, when known. */
    readonly expectedSeq: number | undefined,
    /** The entry seq that was given, when there was one. */
    readonly actualSeq: number | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The log or its writer was closed by its owner before `operation` was handed to it. */
export class OpLogClosedError extends UnderstudyError {
  override readonly name = 'OpLogClosedError';
  readonly code = 'OPLOG_CLOSED';
  override readonly retryable = false;
  constructor(
    readonly operation: string,
    message = `${operation}: closed`,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
