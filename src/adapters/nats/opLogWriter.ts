/**
 * The OpLog writer on JetStream: group commit (appends handed over together are cut into
 * messages of at most `maxBatchEntries` entries and about `maxBatchBytes` bytes), pipelining
 * (messages are sent without waiting for the previous acknowledgement, each fenced with
 * expected-last-sequence and its predecessor's id) and the resolution of an append whose
 * acknowledgement never came (read back and re-published until decided, or ambiguous).
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { encodeBatch } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  OpLogClosedError,
  type AppendAck,
  type OpLogWriter,
} from '../../ports/opLog.ts';
import type { Clock } from '../../ports/clock.ts';
import type { BatchSignature } from './batchSignature.ts';

const MSG_ID_HEADER = 'Nats-Msg-Id';
/** Per-entry framing and header overhead, over-estimated (see codec.ts). */
const ENTRY_OVERHEAD_BYTES = 64;
const BATCH_OVERHEAD_BYTES = 16;

/** Resolves after `ms` milliseconds of `clock`. */
function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimeout(resolve, ms);
  });
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

/** How the writer cuts and sends messages, and how long it waits for them. */
export interface OpLogWriterSettings {
  readonly maxBatchEntries: number;
  readonly maxBatchBytes: number;
  readonly ackTimeoutMs: number;
  readonly resolveTimeoutMs: number;
  readonly signature: BatchSignature;
  /** Times the resolution of an append whose acknowledgement never came (its deadline, backoff). */
  readonly clock: Clock;
}

/**
 * One writer of the OpLog: group-commits appends into messages, pipelines them under the
 * expected-last-sequence fence, and resolves a message whose acknowledgement was lost.
 */
export class NatsOpLogWriter implements OpLogWriter {
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
    private readonly settings: OpLogWriterSettings,
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
    const { clock } = this.settings;
    const deadline = clock.monotonicNow() + this.settings.resolveTimeoutMs;
    let lastError = cause;
    let backoffMs = 50;
    // This message can only be stored right after its predecessor: let that be decided first.
    const previousStored = (await message.previous) ?? true;
    while (clock.monotonicNow() < deadline) {
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
      await sleep(clock, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 1_000);
    }
    throw new AmbiguousAppendError(message.firstSeq, message.lastSeq, { cause: lastError });
  }
}
