/**
 * The OpLog on NATS JetStream: one stream per cluster, one message per batch of consecutive
 * entries. Writers are fenced with expected-last-sequence on every publish, pipelined and
 * group-committed; followers use an ordered consumer and check entry continuity themselves.
 */
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from '@nats-io/jetstream';
import { type MsgHdrs, type NatsConnection, type Status } from '@nats-io/nats-core';
import { CodecError, encodeBatch } from '../../domain/log/codec.ts';
import { BatchSignature, OtherKeyError } from './batchSignature.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  NotRetainedError,
  OpLogClosedError,
  type AppendAck,
  type LogBatch,
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

const MSG_ID_HEADER = 'Nats-Msg-Id';
/** Per-entry framing and header overhead, over-estimated (see codec.ts). */
const ENTRY_OVERHEAD_BYTES = 64;
const BATCH_OVERHEAD_BYTES = 16;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The stream's real last sequence from a "wrong last sequence: N" rejection. */
function wrongLastSequence(err: unknown): { readonly actual: number | undefined } | undefined {
  if (!(err instanceof JetStreamApiError)) return undefined;
  if (err.code !== JetStreamApiCodes.StreamWrongLastSequence) return undefined;
  const match = /wrong last sequence:\s*(\d+)/i.exec(err.message);
  return { actual: match?.[1] === undefined ? undefined : Number(match[1]) };
}

function isSameMessage(stored: StoredMsg, message: OutgoingMessage): boolean {
  if (stored.header?.get(MSG_ID_HEADER) !== message.msgId) return false;
  const data = stored.data;
  if (data.length !== message.bytes.length) return false;
  for (let i = 0; i < data.length; i++) if (data[i] !== message.bytes[i]) return false;
  return true;
}

function estimateBytes(entry: OpLogEntry): number {
  return ENTRY_OVERHEAD_BYTES + entry.key.length * 3 + entry.payload.length;
}

interface OutgoingMessage {
  /** The stream sequence this message expects to be last; it is stored at expected + 1. */
  readonly expected: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly msgId: string;
  /** The id of this writer's previous message (stored at `expected`), if it had one. */
  readonly previousMsgId: string | undefined;
  /** Settles once this writer's previous message is decided (stored, fenced or unknown). */
  readonly previous: Promise<boolean> | undefined;
  readonly bytes: Uint8Array;
}

interface PendingAppend {
  readonly entries: readonly OpLogEntry[];
  resolve(ack: AppendAck): void;
  reject(err: unknown): void;
}

interface Settings {
  readonly maxBatchEntries: number;
  readonly maxBatchBytes: number;
  readonly ackTimeoutMs: number;
  readonly resolveTimeoutMs: number;
  readonly signature: BatchSignature;
}

class NatsOpLogWriter implements OpLogWriter {
  private nextExpected: number;
  private previousMsgId: string | undefined;
  private previousStored: Promise<boolean> | undefined;
  private nextSeq: number | undefined;
  private pending: PendingAppend[] = [];
  private flushScheduled = false;
  private closed = false;
  /** An entry could not be encoded: nothing after it may be sent (it would leave a hole). */
  private broken: Error | undefined;
  private fence: { readonly expected: number; readonly actual: number | undefined } | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly streamName: string,
    private readonly subject: string,
    private readonly settings: Settings,
    expectedLastStreamSeq: number,
    private readonly onClose: () => void,
  ) {
    this.nextExpected = expectedLastStreamSeq;
  }

  get fenced(): boolean {
    return this.fence !== undefined;
  }

  append(entries: readonly OpLogEntry[]): Promise<AppendAck> {
    if (this.fence !== undefined) {
      return Promise.reject(new FencedError(this.fence.expected, this.fence.actual));
    }
    if (this.closed) {
      return Promise.reject(new OpLogClosedError('append', 'the OpLog writer is closed'));
    }
    const first = entries[0];
    if (first === undefined) {
      return Promise.reject(new AppendOrderError(this.nextSeq, undefined, 'append of no entries'));
    }
    let expectedSeq = this.nextSeq ?? first.seq;
    for (const entry of entries) {
      if (entry.seq !== expectedSeq) {
        return Promise.reject(
          new AppendOrderError(
            expectedSeq,
            entry.seq,
            `entries must be contiguous: expected seq ${expectedSeq}, got ${entry.seq}`,
          ),
        );
      }
      expectedSeq++;
    }
    this.nextSeq = expectedSeq;
    return new Promise<AppendAck>((resolve, reject) => {
      this.pending.push({ entries, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.onClose();
    while (this.inFlight.size > 0 || this.pending.length > 0) {
      if (this.pending.length > 0) this.flush();
      await Promise.allSettled([...this.inFlight]);
    }
  }

  /** Cuts everything handed over since the last flush into messages and sends them in order. */
  private flush(): void {
    this.flushScheduled = false;
    const calls = this.pending;
    this.pending = [];
    if (calls.length === 0) return;
    const { maxBatchEntries, maxBatchBytes } = this.settings;
    const callMessages: Promise<AppendAck>[][] = calls.map(() => []);
    let group: OpLogEntry[] = [];
    let groupBytes = BATCH_OVERHEAD_BYTES;
    let groupCalls: number[] = [];
    const cut = (): void => {
      if (group.length === 0) return;
      const sent = this.send(group);
      for (const callIndex of groupCalls) callMessages[callIndex]?.push(sent);
      group = [];
      groupBytes = BATCH_OVERHEAD_BYTES;
      groupCalls = [];
    };
    calls.forEach((call, callIndex) => {
      for (const entry of call.entries) {
        const size = estimateBytes(entry);
        if (
          group.length >= maxBatchEntries ||
          (group.length > 0 && groupBytes + size > maxBatchBytes)
        ) {
          cut();
        }
        group.push(entry);
        groupBytes += size;
        if (groupCalls[groupCalls.length - 1] !== callIndex) groupCalls.push(callIndex);
      }
    });
    cut();
    calls.forEach((call, callIndex) => {
      Promise.all(callMessages[callIndex] ?? []).then(
        (acks) => {
          const last = acks[acks.length - 1];
          if (last === undefined) call.reject(new Error('append produced no message'));
          else call.resolve(last);
        },
        (err: unknown) => call.reject(err),
      );
    });
  }

  private send(entries: readonly OpLogEntry[]): Promise<AppendAck> {
    const first = entries[0];
    const last = entries[entries.length - 1];
    if (first === undefined || last === undefined) throw new Error('empty batch');
    if (this.broken !== undefined) return Promise.reject(this.broken);
    let bytes: Uint8Array;
    try {
      bytes = encodeBatch(entries);
    } catch (err) {
      this.broken = err instanceof Error ? err : new Error('entries could not be encoded');
      return Promise.reject(this.broken);
    }
    const message: OutgoingMessage = {
      expected: this.nextExpected++,
      firstSeq: first.seq,
      lastSeq: last.seq,
      msgId: `${first.epoch}:${first.seq}`,
      previousMsgId: this.previousMsgId,
      previous: this.previousStored,
      bytes,
    };
    this.previousMsgId = message.msgId;
    // publish() sends synchronously, so messages leave in the order they were cut.
    const result = this.deliver(message);
    this.previousStored = result.then(
      () => true,
      () => false,
    );
    this.inFlight.add(result);
    const forget = (): void => {
      this.inFlight.delete(result);
    };
    result.then(forget, forget);
    return result;
  }

  /**
   * Publishes with the fence: the stream's last message must be `expected` and, when this
   * writer sent one before, that message must be this writer's previous one (so a pipelined
   * message cannot land right after another writer's message that took its predecessor's
   * place). `chained: false` drops the id check once the predecessor was read back.
   */
  private publish(
    message: OutgoingMessage,
    chained = true,
  ): ReturnType<JetStreamClient['publish']> {
    const headers = this.settings.signature.headersFor(message.bytes);
    return this.js.publish(this.subject, message.bytes, {
      ...(headers === undefined ? {} : { headers }),
      msgID: message.msgId,
      expect:
        chained && message.previousMsgId !== undefined
          ? { lastSequence: message.expected, lastMsgID: message.previousMsgId }
          : { lastSequence: message.expected },
      timeout: this.settings.ackTimeoutMs,
    });
  }

  private ackOf(message: OutgoingMessage, streamSeq: number): AppendAck {
    return { streamSeq, firstSeq: message.firstSeq, lastSeq: message.lastSeq };
  }

  private fenceAt(
    message: OutgoingMessage,
    actual: number | undefined,
    cause: unknown,
  ): FencedError {
    this.fence ??= { expected: message.expected, actual };
    return new FencedError(message.expected, actual, { cause });
  }

  /**
   * The server says a message with this id is already stored at `streamSeq`: it is ours only
   * if it sits where ours was to go and holds the same bytes (another writer of the same
   * epoch may have used the id).
   */
  private async checkDuplicate(message: OutgoingMessage, streamSeq: number): Promise<AppendAck> {
    const stored = await this.jsm.streams.getMessage(this.streamName, { seq: streamSeq });
    if (stored !== null && streamSeq === message.expected + 1 && isSameMessage(stored, message)) {
      return this.ackOf(message, streamSeq);
    }
    throw this.fenceAt(message, await this.lastStreamSeq(), undefined);
  }

  private async lastStreamSeq(): Promise<number | undefined> {
    try {
      return (await this.jsm.streams.info(this.streamName)).state.last_seq;
    } catch {
      return undefined;
    }
  }

  private async deliver(message: OutgoingMessage): Promise<AppendAck> {
    let first: unknown;
    try {
      const ack = await this.publish(message);
      if (this.fence !== undefined) {
        // An earlier message of this writer was rejected: the writer is fenced, and so is
        // every later in-flight batch.
        throw new FencedError(message.expected, this.fence.actual);
      }
      if (ack.duplicate) {
        // This id was never sent by this writer before: another writer (of the same epoch)
        // stored it.
        throw this.fenceAt(message, await this.lastStreamSeq(), undefined);
      }
      if (ack.seq === message.expected + 1) return this.ackOf(message, ack.seq);
      first = new Error(`acknowledged at stream seq ${ack.seq}, expected ${message.expected + 1}`);
    } catch (err) {
      if (err instanceof FencedError) throw err;
      const wrong = wrongLastSequence(err);
      if (wrong?.actual !== undefined && wrong.actual > message.expected) {
        throw this.fenceAt(message, wrong.actual, err);
      }
      if (this.fence !== undefined) {
        throw new FencedError(message.expected, this.fence.actual, { cause: err });
      }
      first = err;
    }
    return this.resolve(message, first);
  }

  /**
   * The message's fate is unknown (no ack, or the stream was behind): read back its slot and
   * re-publish the same bytes with the same id and expectation until it is decided.
   */
  private async resolve(message: OutgoingMessage, cause: unknown): Promise<AppendAck> {
    const deadline = performance.now() + this.settings.resolveTimeoutMs;
    let lastError = cause;
    let backoffMs = 50;
    // This message can only be stored right after its predecessor: let that be decided first.
    const previousStored = (await message.previous) ?? true;
    while (performance.now() < deadline) {
      try {
        const stored = await this.jsm.streams.getMessage(this.streamName, {
          seq: message.expected + 1,
        });
        if (stored !== null) {
          if (isSameMessage(stored, message)) return this.ackOf(message, stored.seq);
          throw this.fenceAt(message, await this.lastStreamSeq(), lastError);
        }
        if (this.fence !== undefined) {
          throw new FencedError(message.expected, this.fence.actual, { cause: lastError });
        }
        // The predecessor's fate is unknown, and so is where this one could go.
        if (!previousStored) break;
        // The predecessor is stored at `expected`, so the sequence check alone keeps this one
        // right after it (the stream may have forgotten the last message id in a restart).
        const ack = await this.publish(message, false);
        if (ack.duplicate) return await this.checkDuplicate(message, ack.seq);
        if (ack.seq === message.expected + 1) return this.ackOf(message, ack.seq);
        lastError = new Error(
          `acknowledged at stream seq ${ack.seq}, expected ${message.expected + 1}`,
        );
      } catch (err) {
        if (err instanceof FencedError) throw err;
        // A wrong last sequence means the slot was taken meanwhile: the next read-back decides.
        lastError = err;
      }
      await sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, 1_000);
    }
    throw new AmbiguousAppendError(message.firstSeq, message.lastSeq, { cause: lastError });
  }
}

/**
 * What the follower asks of its ordered consumer: batches of 100, and a server heartbeat every
 * second while there is nothing to deliver, so a dead subscription is noticed in about two.
 */
const CONSUME_OPTIONS = { max_messages: 100, expires: 30_000, idle_heartbeat: 1_000 } as const;

/**
 * Consumer statuses after which the client's ordered consumer cannot be trusted to deliver
 * again: after a server restart the v3 client recreates it (`reset`,
 * `ordered_consumer_recreated`) with a pull for 0 messages and never pulls again, so the
 * follower stalls silently (seen with nats-server 2.9.10 killed -9 and restarted).
 */
const LOST_CONSUMER = new Set([
  'heartbeats_missed',
  'consumer_not_found',
  'consumer_deleted',
  'stream_not_found',
  'reset',
  'ordered_consumer_recreated',
]);

class NatsLogFollower implements LogFollower {
  private closed = false;
  private messages: ConsumerMessages | undefined;

  constructor(
    private readonly log: NatsOpLogImpl,
    private readonly fromSeq: number,
    private readonly afterStreamSeq: number | undefined,
    private readonly onClose: () => void,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.messages?.stop();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Ends `messages` (the follower then opens a new ordered consumer where it stopped) as soon as
   * the client reports that the consumer was lost.
   */
  private async replaceWhenLost(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (LOST_CONSUMER.has(status.type)) {
        messages.stop();
        return;
      }
    }
  }

  /**
   * Ends the current consumer (the follower then opens a new one where it stopped) whenever the
   * connection reconnects: a pull the server lost with the old connection is never made again
   * by the client, which then hears heartbeats but no messages (seen with a TCP proxy cutting
   * the follower's connection, about one run in two).
   */
  private async replaceOnReconnect(statuses: AsyncIterable<Status>): Promise<void> {
    for await (const status of statuses) {
      if (this.closed) return;
      if (status.type === 'reconnect') this.messages?.stop();
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LogBatch> {
    const statuses = this.log.nc.status() as AsyncIterable<Status> & { stop?: () => void };
    void this.replaceOnReconnect(statuses);
    try {
      let nextStreamSeq = await this.log.streamSeqOf(this.fromSeq, this.afterStreamSeq);
      let delivered = false;
      while (!this.closed) {
        let messages: ConsumerMessages;
        try {
          const consumer = await this.log.js.consumers.get(this.log.streamName, {
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: nextStreamSeq,
          });
          if (this.closed) break;
          messages = await consumer.consume(CONSUME_OPTIONS);
        } catch {
          // Not connected, or the server is restarting: try again until close().
          await sleep(250);
          continue;
        }
        this.messages = messages;
        if (this.closed) {
          messages.stop();
          break;
        }
        void this.replaceWhenLost(messages);
        try {
          for await (const msg of messages) {
            if (this.closed) break;
            nextStreamSeq = msg.seq + 1;
            let entries: OpLogEntry[];
            try {
              entries = this.log.decode(msg.data, msg.headers);
            } catch (err) {
              if (!(err instanceof CodecError)) throw err;
              // Not a batch of entries (or, with a key, not signed by it): no part of the log. Reported, then passed over.
              yield {
                streamSeq: msg.seq,
                entries: [],
                undecodable: err.message,
                ...(err instanceof OtherKeyError ? { signedUnder: err.signedUnder } : {}),
              };
              if (this.closed) break;
              continue;
            }
            // Every message in stream order, whatever seqs its entries carry: the reader tells
            // the log's entries from an outsider's. Only the start is checked here.
            const fresh = entries.filter((entry) => entry.seq >= this.fromSeq);
            const head = fresh[0];
            if (!delivered && this.afterStreamSeq === undefined && head !== undefined) {
              if (head.seq > this.fromSeq) throw new NotRetainedError(this.fromSeq, head.seq);
            }
            if (head !== undefined) delivered = true;
            yield { streamSeq: msg.seq, entries: fresh };
            if (this.closed) break;
          }
        } finally {
          messages.stop();
          this.messages = undefined;
        }
        // The ordered consumer ended without close(): start again where it stopped.
        if (!this.closed) await sleep(100);
      }
    } finally {
      statuses.stop?.();
      this.close();
    }
  }
}

class NatsOpLogImpl implements NatsOpLog {
  readonly js: JetStreamClient;
  private readonly writers = new Set<NatsOpLogWriter>();
  private readonly followers = new Set<NatsLogFollower>();

  constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly streamName: string,
    readonly subject: string,
    private readonly settings: Settings,
  ) {
    this.js = jsm.jetstream();
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
    const info = await this.jsm.streams.info(this.streamName);
    const { first_seq: firstStreamSeq, last_seq: lastStreamSeq } = info.state;
    // Empty (never written, trimmed or purged): last_seq is still the last message's sequence.
    if (info.state.messages === 0) return { firstSeq: 0, lastSeq: 0, lastStreamSeq };
    const first = await this.entriesFrom(firstStreamSeq, lastStreamSeq, 1);
    if (first === undefined) return { firstSeq: 0, lastSeq: 0, lastStreamSeq };
    const last = await this.entriesFrom(lastStreamSeq, first.streamSeq, -1);
    return {
      firstSeq: first.entries[0]?.seq ?? 0,
      lastSeq: last?.entries[last.entries.length - 1]?.seq ?? 0,
      lastStreamSeq,
    };
  }

  async trimThrough(streamSeq: number): Promise<void> {
    // purge's `seq` keeps that message and every later one.
    await this.jsm.streams.purge(this.streamName, { seq: streamSeq + 1 });
  }

  async close(): Promise<void> {
    for (const follower of [...this.followers]) follower.close();
    await Promise.all([...this.writers].map((writer) => writer.close()));
  }

  /** The entries of stream message `streamSeq`; undefined when it is gone or does not decode. */
  /** The entries of a stored message (see {@link BatchSignature.decode}). */
  decode(bytes: Uint8Array, headers: MsgHdrs | undefined): OpLogEntry[] {
    return this.settings.signature.decode(bytes, headers);
  }

  async entriesAt(streamSeq: number): Promise<OpLogEntry[] | undefined> {
    const stored = await this.jsm.streams.getMessage(this.streamName, { seq: streamSeq });
    if (stored === null) return undefined;
    try {
      const entries = this.decode(stored.data, stored.header);
      return entries.length > 0 ? entries : undefined;
    } catch (err) {
      if (err instanceof CodecError) return undefined;
      throw err;
    }
  }

  /**
   * The first message from `streamSeq` towards `bound` (step +1 or -1, both inclusive) that
   * holds entries, passing over undecodable (and vanished) ones; undefined when none does.
   */
  async entriesFrom(
    streamSeq: number,
    bound: number,
    step: 1 | -1,
  ): Promise<{ readonly streamSeq: number; readonly entries: OpLogEntry[] } | undefined> {
    for (let seq = streamSeq; step > 0 ? seq <= bound : seq >= bound; seq += step) {
      const entries = await this.entriesAt(seq);
      if (entries !== undefined) return { streamSeq: seq, entries };
    }
    return undefined;
  }

  /**
   * The stream sequence to follow from so that entry `fromSeq` is the first delivered: right
   * after message `afterStreamSeq` when the reader knows it (and the stream got that far), else
   * the message holding `fromSeq`, or the next message to be stored when it is not stored yet.
   */
  async streamSeqOf(fromSeq: number, afterStreamSeq?: number): Promise<number> {
    const info = await this.jsm.streams.info(this.streamName);
    const { first_seq: firstStreamSeq, last_seq: lastStreamSeq, messages } = info.state;
    if (afterStreamSeq !== undefined && afterStreamSeq > 0 && afterStreamSeq <= lastStreamSeq) {
      // Messages after it were trimmed away (first_seq is last_seq + 1 in an emptied stream).
      if (firstStreamSeq > afterStreamSeq + 1) {
        const first = await this.entriesFrom(firstStreamSeq, lastStreamSeq, 1);
        throw new NotRetainedError(fromSeq, first?.entries[0]?.seq ?? fromSeq + 1);
      }
      return afterStreamSeq + 1;
    }
    // Empty: the first message to come must hold fromSeq (checked by the follower).
    if (messages === 0) return lastStreamSeq + 1;
    const first = await this.entriesFrom(firstStreamSeq, lastStreamSeq, 1);
    const firstRetained = first?.entries[0]?.seq;
    // Nothing but undecodable messages: the first to come must hold fromSeq.
    if (first === undefined || firstRetained === undefined) return lastStreamSeq + 1;
    if (fromSeq < firstRetained) throw new NotRetainedError(fromSeq, firstRetained);
    const last = await this.entriesFrom(lastStreamSeq, first.streamSeq, -1);
    const lastStored = last?.entries[last.entries.length - 1]?.seq ?? 0;
    if (last === undefined || fromSeq > lastStored) return lastStreamSeq + 1;
    // Binary search: the last message holding entries whose first entry is <= fromSeq. Messages
    // without entries (undecodable, vanished) belong to the next message holding entries.
    let low = first.streamSeq;
    let high = last.streamSeq;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      const found = await this.entriesFrom(mid, high, 1);
      const head = found?.entries[0]?.seq;
      if (found === undefined || head === undefined || head > fromSeq) high = mid - 1;
      else low = found.streamSeq;
    }
    return low;
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
    signature: new BatchSignature(options.signingKey),
  });
}
