import { randomUUID } from 'node:crypto';
import type { Etcd3, IKeyValue } from 'etcd3';
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
import { withTimeout } from './etcdClient.ts';
import {
  messageKey,
  producerKey,
  producerSeq,
  writerTokenKey,
  type EtcdStreamReads,
} from './etcdStream.ts';

/**
 * How a writer sends its messages. `coalesce` (default): one transaction in flight, carrying
 * every message queued while the previous one was out (each message keeps its own key and
 * stream seq). `concurrent`: one transaction per message, all in flight at once; etcd applies
 * concurrent requests in no fixed order, so a message that lands before its predecessor is
 * retried once the predecessor is stored.
 */
export type EtcdOpLogPipelining = 'coalesce' | 'concurrent';

/** A message waiting for, or in, a transaction. */
interface PendingMessage {
  readonly streamSeq: number;
  readonly bytes: Buffer;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** Bytes one coalesced transaction carries at most (etcd refuses requests over 1.5 MiB). */
const MAX_TXN_BYTES = 1024 * 1024;

/** What a writer needs of its log: the connection, the stream and how to send. */
export interface EtcdWriterContext {
  readonly client: Etcd3;
  readonly cluster: string;
  readonly callTimeoutMs: number;
  readonly mode: EtcdOpLogPipelining;
  readonly maxMessagesPerTxn: number;
  readonly reads: EtcdStreamReads;
}

/**
 * A writer whose first message extends whatever history ends at `expectedLastStreamSeq` and
 * every later one only its own previous message: compare-and-set transactions on the producer
 * key paired with this writer's token, sent as {@link EtcdOpLogPipelining} says. An append
 * whose answer never came is confirmed by reading its message back, else it is ambiguous.
 */
export function openEtcdOpLogWriter(
  context: EtcdWriterContext,
  { expectedLastStreamSeq }: { readonly expectedLastStreamSeq: number },
): OpLogWriter {
  const { client, cluster, callTimeoutMs, mode, maxMessagesPerTxn } = context;
  const { readMessage } = context.reads;
  const lastKey = producerKey(cluster);
  const writerKey = writerTokenKey(cluster);
  const token = randomUUID();
  let nextExpected = expectedLastStreamSeq;
  let nextEntrySeq: number | undefined;
  let fenced = false;
  let closed = false;
  /** Settles when every append handed over so far has settled. */
  let settled: Promise<unknown> = Promise.resolve();

  /**
   * One transaction storing `messages` (consecutive stream seqs) right after stream seq
   * `expected`. The first message of the writer extends whatever history ends at
   * `expected`; every later one extends only this writer's own previous message.
   * Resolves the producer's real seq when the compare failed, or null when stored.
   */
  async function transact(
    expected: number,
    messages: readonly PendingMessage[],
  ): Promise<number | null> {
    const compare =
      expected === expectedLastStreamSeq
        ? expected === 0
          ? client.if(lastKey, 'Create', '==', 0)
          : client.if(lastKey, 'Value', '==', String(expected))
        : client.if(lastKey, 'Value', '==', String(expected)).and(writerKey, 'Value', '==', token);
    const puts = messages.map((message) =>
      client.put(messageKey(cluster, message.streamSeq)).value(message.bytes),
    );
    const response = await withTimeout(
      compare
        .then(
          ...puts,
          client.put(lastKey).value(String(expected + messages.length)),
          client.put(writerKey).value(token),
        )
        .else(client.get(lastKey))
        .commit(),
      callTimeoutMs,
      'append',
    );
    if (response.succeeded) return null;
    return producerSeq(response.responses[0]?.response_range.kvs[0]?.value);
  }

  /** The answer never came: confirm the run from its last stored message, or give up. */
  async function confirm(messages: readonly PendingMessage[], cause: unknown): Promise<void> {
    const last = messages[messages.length - 1];
    if (last === undefined) return;
    let stored: IKeyValue | undefined;
    try {
      stored = await readMessage(last.streamSeq);
    } catch {
      stored = undefined;
    }
    if (stored !== undefined && stored.value.equals(last.bytes)) return;
    if (stored !== undefined) {
      throw new FencedError(last.streamSeq - messages.length, undefined, { cause });
    }
    throw new AmbiguousAppendError(messages[0]?.firstSeq ?? 0, last.lastSeq, { cause });
  }

  /** Stores `messages` in one transaction; the error, when not stored, is the caller's. */
  async function storeRun(
    messages: readonly PendingMessage[],
    prior: Promise<boolean> | null,
  ): Promise<void> {
    const expected = (messages[0]?.streamSeq ?? 1) - 1;
    for (let attempt = 0; ; attempt++) {
      let actual: number | null;
      try {
        actual = await transact(expected, messages);
      } catch (error) {
        await confirm(messages, error);
        return;
      }
      if (actual === null) return;
      // Arrived before its predecessor (concurrent mode): wait for it, then try once more.
      if (prior !== null && actual < expected && attempt === 0 && (await prior)) continue;
      throw new FencedError(expected, actual);
    }
  }

  const fail = (error: unknown, message: PendingMessage): Error => {
    fenced = true;
    return error instanceof FencedError || error instanceof AmbiguousAppendError
      ? error
      : new AmbiguousAppendError(message.firstSeq, message.lastSeq, { cause: error });
  };

  // Coalescing mode: one transaction in flight, carrying every message queued meanwhile.
  const queue: { message: PendingMessage; settle: (error: Error | null) => void }[] = [];
  let sending = false;
  const pump = (): void => {
    if (sending || queue.length === 0) return;
    const run: typeof queue = [];
    let bytes = 0;
    while (run.length < maxMessagesPerTxn) {
      const next = queue[0];
      if (next === undefined) break;
      if (run.length > 0 && bytes + next.message.bytes.length > MAX_TXN_BYTES) break;
      bytes += next.message.bytes.length;
      run.push(next);
      queue.shift();
    }
    sending = true;
    const messages = run.map((item) => item.message);
    const first = messages[0];
    const stored: Promise<void> =
      fenced && first !== undefined
        ? Promise.reject(new FencedError(first.streamSeq - 1, undefined))
        : storeRun(messages, null);
    stored
      .then(
        () => {
          for (const item of run) item.settle(null);
        },
        (error: unknown) => {
          for (const item of run) item.settle(fail(error, item.message));
        },
      )
      .finally(() => {
        sending = false;
        pump();
      });
  };

  // Concurrent mode: every message its own transaction, all in flight at once.
  /** Settles true when the previous append was stored, false when it was not. */
  let previous: Promise<boolean> = Promise.resolve(true);

  const writer: OpLogWriter = {
    get fenced() {
      return fenced;
    },
    append(entries: readonly OpLogEntry[]): Promise<AppendAck> {
      const first = entries[0];
      const last = entries[entries.length - 1];
      if (first === undefined || last === undefined) {
        return Promise.reject(
          new AppendOrderError(nextEntrySeq, undefined, 'append needs at least one entry'),
        );
      }
      if (closed) return Promise.reject(new OpLogClosedError('append', 'writer is closed'));
      if (fenced) return Promise.reject(new FencedError(nextExpected, undefined));
      if (nextEntrySeq !== undefined && first.seq !== nextEntrySeq) {
        return Promise.reject(
          new AppendOrderError(
            nextEntrySeq,
            first.seq,
            `entries must be contiguous: expected seq ${nextEntrySeq}, got ${first.seq}`,
          ),
        );
      }
      nextEntrySeq = last.seq + 1;
      const encoded = encodeBatch(entries);
      const message: PendingMessage = {
        streamSeq: ++nextExpected,
        bytes: Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength),
        firstSeq: first.seq,
        lastSeq: last.seq,
      };
      const ack: AppendAck = {
        streamSeq: message.streamSeq,
        firstSeq: first.seq,
        lastSeq: last.seq,
      };
      let result: Promise<AppendAck>;
      if (mode === 'coalesce') {
        result = new Promise<AppendAck>((resolve, reject) => {
          queue.push({
            message,
            settle: (error) => {
              if (error === null) resolve(ack);
              else reject(error);
            },
          });
        });
        pump();
      } else {
        const prior = previous;
        result = storeRun([message], prior).then(
          () => ack,
          (error: unknown) => {
            throw fail(error, message);
          },
        );
        // A later append may only be stored after this one: it fails when this one fails.
        previous = Promise.all([prior, result.then(() => true)]).then(
          ([before]) => before,
          () => false,
        );
      }
      settled = Promise.allSettled([settled, result]);
      return result;
    },
    async close() {
      closed = true;
      await settled;
    },
  };
  return writer;
}
