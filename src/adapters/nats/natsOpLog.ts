/**
 * The OpLog on NATS JetStream: one stream per cluster, one message per batch of consecutive
 * entries. Writers are fenced with expected-last-sequence on every publish, pipelined and
 * group-committed; followers use an ordered consumer and check entry continuity themselves.
 *
 * This file composes the parts: stream.ts (names, settings, set-up), opLogWriter.ts,
 * opLogFollower.ts and streamSearch.ts (bounds, where a follower starts).
 */
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { BatchSignature } from './batchSignature.ts';
import type { Clock } from '../../ports/clock.ts';
import { systemClock } from '../systemClock.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import {
  type FollowOptions,
  type LogBounds,
  type LogFollower,
  type OpLog,
  type OpLogWriter,
} from '../../ports/opLog.ts';
import {
  APPEND_ACK_TIMEOUT_MS,
  APPEND_RESOLVE_TIMEOUT_MS,
  OPLOG_DUPLICATE_WINDOW_MS,
} from './streamLimits.ts';
import {
  followStartStreamSeq,
  jetStreamMessageReader,
  logBounds,
  type StreamMessageReader,
  type StreamState,
} from './streamSearch.ts';
import { NatsLogFollower } from './opLogFollower.ts';
import { NatsOpLogWriter, type OpLogWriterSettings } from './opLogWriter.ts';
import {
  checkStreamSettings,
  ensureStream,
  opLogStreamConfig,
  opLogStreamName,
  opLogSubject,
  type OpLogStreamSettings,
} from './stream.ts';

export interface NatsOpLogOptions {
  /** The connection to use. The caller owns it: `close()` of the log does not close it. */
  readonly nc: NatsConnection;
  /** Names the subject `understudy.<cluster>.oplog` and the stream `UNDERSTUDY_<CLUSTER>_OPLOG`. */
  readonly cluster: string;
  /** Stream replicas (default 1). */
  readonly replicas?: 1 | 3;
  /**
   * Retention by age (default 0: none). The stream is trimmed by checkpoints
   * ({@link OpLog.trimThrough}); an age limit is a guard the node checks against its
   * checkpoint interval (see runtime/retention.ts).
   */
  readonly maxAgeMs?: number;
  /** Retention by size (default -1: unlimited). */
  readonly maxBytes?: number;
  /** Group commit: at most this many entries per message (default 100). */
  readonly maxBatchEntries?: number;
  /** Group commit: at most about this many bytes per message (default 512 KiB). */
  readonly maxBatchBytes?: number;
  /** How long one publish waits for its acknowledgement (default 5000 ms). */
  readonly ackTimeoutMs?: number;
  /**
   * How long one JetStream API request (stream info, get message, consumer create) waits
   * (default 5000 ms). A node sets it from its lease TTL (see natsLiveness.ts).
   */
  readonly apiTimeoutMs?: number;
  /**
   * How long an append whose acknowledgement never came is retried and read back before it
   * rejects with {@link AmbiguousAppendError} (default 30 s).
   */
  readonly resolveTimeoutMs?: number;
  /**
   * The stream's duplicate window (default {@link OPLOG_DUPLICATE_WINDOW_MS}); at least
   * `2 × ackTimeoutMs + resolveTimeoutMs`, the span of one append's retries.
   */
  readonly duplicateWindowMs?: number;
  /**
   * The cluster's OpLog key: every message this log writes carries the HMAC-SHA256 of its bytes
   * under it, and a message without a valid one is no batch of entries (reported and passed
   * over like an undecodable one). Every node of a cluster needs the same key. Default: none.
   */
  readonly signingKey?: Uint8Array;
  /**
   * The clock that times an append whose acknowledgement never came: the `resolveTimeoutMs`
   * deadline and the backoff between read-backs (default {@link systemClock}).
   */
  readonly clock?: Clock;
  /**
   * Open the stream as it is (for tools): neither create it nor change its settings; fails
   * when it does not exist. Default false (a node creates it and applies its settings).
   */
  readonly existingOnly?: boolean;
}

/** The NATS OpLog, with the names of its stream and subject. */
export interface NatsOpLog extends OpLog {
  readonly streamName: string;
  readonly subject: string;
  trimThrough(streamSeq: number): Promise<void>;
}

class NatsOpLogImpl implements NatsOpLog {
  readonly js: JetStreamClient;
  private readonly reader: StreamMessageReader;
  private readonly writers = new Set<NatsOpLogWriter>();
  private readonly followers = new Set<NatsLogFollower>();

  constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly streamName: string,
    readonly subject: string,
    private readonly settings: OpLogWriterSettings,
  ) {
    this.js = jsm.jetstream();
    this.reader = jetStreamMessageReader(jsm, streamName, settings.signature);
  }

  openWriter(options: { readonly expectedLastStreamSeq: number }): OpLogWriter {
    const writer: NatsOpLogWriter = new NatsOpLogWriter(
      this.js,
      this.jsm,
      this.streamName,
      this.subject,
      this.settings,
      options.expectedLastStreamSeq,
      () => this.writers.delete(writer),
    );
    this.writers.add(writer);
    return writer;
  }

  follow(fromSeq: number, options?: FollowOptions): LogFollower {
    const follower: NatsLogFollower = new NatsLogFollower(
      this,
      fromSeq,
      options?.afterStreamSeq,
      () => this.followers.delete(follower),
    );
    this.followers.add(follower);
    return follower;
  }

  async bounds(): Promise<LogBounds> {
    return logBounds(this.reader, await this.streamState());
  }

  async trimThrough(streamSeq: number): Promise<void> {
    // purge's `seq` keeps that message and every later one.
    await this.jsm.streams.purge(this.streamName, { seq: streamSeq + 1 });
  }

  async close(): Promise<void> {
    for (const follower of [...this.followers]) follower.close();
    await Promise.all([...this.writers].map((writer) => writer.close()));
  }

  /** The entries of a stored message (see {@link BatchSignature.decode}). */
  decode(bytes: Uint8Array, headers: MsgHdrs | undefined): OpLogEntry[] {
    return this.settings.signature.decode(bytes, headers);
  }

  /** See {@link followStartStreamSeq}. */
  async streamSeqOf(fromSeq: number, afterStreamSeq?: number): Promise<number> {
    return followStartStreamSeq(this.reader, await this.streamState(), fromSeq, afterStreamSeq);
  }

  private async streamState(): Promise<StreamState> {
    const { first_seq, last_seq, messages } = (await this.jsm.streams.info(this.streamName)).state;
    return { firstStreamSeq: first_seq, lastStreamSeq: last_seq, messages };
  }
}

/**
 * Opens the cluster's OpLog on JetStream: creates the stream, or updates the settings that
 * can change on an existing one (retention, duplicate window, replicas).
 *
 * The returned log promises what {@link OpLog} promises, and in particular: an append
 * resolves only once every one of its messages is confirmed stored (acknowledged, or found
 * in the stream with its message id after a lost acknowledgement); it rejects with
 * {@link FencedError} only when the stream holds another writer's message where this
 * writer's was to go; {@link AmbiguousAppendError} means "unknown": its entries may or may
 * not be stored, and the caller must read the log to find out.
 */
export async function createNatsOpLog(options: NatsOpLogOptions): Promise<NatsOpLog> {
  const streamName = opLogStreamName(options.cluster);
  const subject = opLogSubject(options.cluster);
  const stream: OpLogStreamSettings = {
    replicas: options.replicas ?? 1,
    maxAgeMs: options.maxAgeMs ?? 0,
    maxBytes: options.maxBytes ?? -1,
    duplicateWindowMs: options.duplicateWindowMs ?? OPLOG_DUPLICATE_WINDOW_MS,
    ackTimeoutMs: options.ackTimeoutMs ?? APPEND_ACK_TIMEOUT_MS,
    resolveTimeoutMs: options.resolveTimeoutMs ?? APPEND_RESOLVE_TIMEOUT_MS,
  };
  checkStreamSettings(streamName, stream);
  const jsm = await jetstreamManager(options.nc, { timeout: options.apiTimeoutMs ?? 5_000 });
  if (options.existingOnly === true) await jsm.streams.info(streamName);
  else await ensureStream(jsm, streamName, opLogStreamConfig(subject, stream));
  return new NatsOpLogImpl(options.nc, jsm, streamName, subject, {
    maxBatchEntries: Math.max(1, options.maxBatchEntries ?? 100),
    maxBatchBytes: options.maxBatchBytes ?? 512 * 1024,
    ackTimeoutMs: stream.ackTimeoutMs,
    resolveTimeoutMs: stream.resolveTimeoutMs,
    clock: options.clock ?? systemClock,
    signature: new BatchSignature(options.signingKey),
  });
}
