/**
 * The OpLog follower on JetStream: an ordered consumer from the message holding the first
 * entry wanted, replaced whenever the client loses it (server restart, reconnect, missed
 * heartbeats), yielding every message in stream order; undecodable ones are reported and
 * passed over. Only the start of the log is checked here; the reader checks continuity.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection, Status } from '@nats-io/nats-core';
import { CodecError } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import { NotRetainedError, type LogBatch, type LogFollower } from '../../ports/opLog.ts';
import { OtherKeyError } from './batchSignature.ts';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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

/** What a follower reads through: the log it follows. */
export interface FollowedStream {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly streamName: string;
  /** The entries of a stored message; throws CodecError when it is no batch of entries. */
  decode(bytes: Uint8Array, headers: MsgHdrs | undefined): OpLogEntry[];
  /** The stream sequence to start at so that entry `fromSeq` is the first delivered. */
  streamSeqOf(fromSeq: number, afterStreamSeq?: number): Promise<number>;
}

/**
 * A follower of the OpLog: every stream message in order from the one holding `fromSeq`,
 * through an ordered consumer it replaces whenever the client loses it.
 */
export class NatsLogFollower implements LogFollower {
  private closed = false;
  private messages: ConsumerMessages | undefined;

  constructor(
    private readonly log: FollowedStream,
    private readonly fromSeq: number,
    private readonly afterStreamSeq: number | undefined,
    private readonly onClose: () => void,
  ) {}

  /** The first entry seq of `msg`, when it is a batch of entries. */
  #headSeq(msg: { data: Uint8Array; headers?: MsgHdrs | undefined }): number | undefined {
    try {
      return this.log.decode(msg.data, msg.headers)[0]?.seq;
    } catch {
      return undefined;
    }
  }

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
      /** The entry the log goes on with: the one after the last entry delivered. */
      let nextEntrySeq = this.fromSeq;
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
            // Stream sequences grow by one: messages skipped over were removed (a checkpoint's
            // trim passed under this follower, or a delete), and what they held is gone. The
            // entries after them cannot be folded onto this state (a fence among the removed
            // made the next ones look foreign), so the node must restore (sync) instead.
            if (msg.seq > nextStreamSeq) {
              throw new NotRetainedError(nextEntrySeq, this.#headSeq(msg) ?? nextEntrySeq + 1);
            }
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
            const last = fresh.at(-1);
            if (last !== undefined && last.seq >= nextEntrySeq) nextEntrySeq = last.seq + 1;
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
