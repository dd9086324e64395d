import { randomUUID } from 'node:crypto';
import { Range, type IKeyValue, type Watcher } from 'etcd3';
import { decodeBatch, encodeBatch } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import {
  AmbiguousAppendError,
  AppendOrderError,
  FencedError,
  NotRetainedError,
  OpLogClosedError,
  type AppendAck,
  type LogBatch,
  type LogBounds,
  type LogFollower,
  type OpLog,
  type OpLogWriter,
} from '../../ports/opLog.ts';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  EtcdUnavailableError,
  clusterPrefix,
  openEtcd,
  withTimeout,
  type EtcdConnectionOptions,
} from './etcdClient.ts';

/**
 * How a writer sends its messages. `coalesce` (default): one transaction in flight, carrying
 * every message queued while the previous one was out (each message keeps its own key and
 * stream seq). `concurrent`: one transaction per message, all in flight at once; etcd applies
 * concurrent requests in no fixed order, so a message that lands before its predecessor is
 * retried once the predecessor is stored.
 */
export type EtcdOpLogPipelining = 'coalesce' | 'concurrent';

export interface EtcdOpLogOptions {
  readonly client: EtcdConnectionOptions;
  /** Keys live under `/understudy/<cluster>/oplog/`. */
  readonly cluster: string;
  /** Bound on each etcd call; default 3000 ms. */
  readonly callTimeoutMs?: number;
  /** Default `coalesce`. */
  readonly pipelining?: EtcdOpLogPipelining;
  /**
   * Most messages one coalesced transaction carries; default 100 (etcd refuses transactions
   * of more than `--max-txn-ops`, 128 by default, operations; each carries 2 more).
   */
  readonly maxMessagesPerTxn?: number;
}

/** A message waiting for, or in, a transaction. */
interface PendingMessage {
  readonly streamSeq: number;
  readonly bytes: Buffer;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** Bytes one coalesced transaction carries at most (etcd refuses requests over 1.5 MiB). */
const MAX_TXN_BYTES = 1024 * 1024;

const SEQ_DIGITS = 16;
/** Messages read per range request while catching up. */
const PAGE_SIZE = 500;

/** `/understudy/<cluster>/oplog/last`: the producer key, the last stream seq. */
export function producerKey(cluster: string): string {
  return `${clusterPrefix(cluster)}oplog/last`;
}

/** `/understudy/<cluster>/oplog/<zero-padded stream seq>`: one message (an encoded batch). */
export function messageKey(cluster: string, streamSeq: number): string {
  return `${clusterPrefix(cluster)}oplog/${String(streamSeq).padStart(SEQ_DIGITS, '0')}`;
}

function messageRange(cluster: string): Range {
  const base = `${clusterPrefix(cluster)}oplog/`;
  // Digits sort before ':', and 'last' sorts after it: the range holds the messages only.
  return new Range(`${base}0`, `${base}:`);
}

function streamSeqOf(kv: IKeyValue): number {
  const name = kv.key.toString('utf8');
  return Number(name.slice(name.lastIndexOf('/') + 1));
}

function producerSeq(value: Buffer | undefined): number {
  if (value === undefined) return 0;
  return Number(value.toString('utf8'));
}

function toBatch(kv: IKeyValue): LogBatch {
  return { streamSeq: streamSeqOf(kv), entries: decodeBatch(new Uint8Array(kv.value)) };
}

/**
 * The baseline OpLog on etcd (what Mooncake Store does): messages are stored by
 * compare-and-set transactions on a producer key, so a message is stored only right after the
 * message its writer expected. Appends are pipelined (see {@link EtcdOpLogPipelining}). The producer
 * key is paired with a writer key holding the last writer's token, so no writer can extend
 * another writer's message (even one stored at the stream seq it expected).
 */
export function createEtcdOpLog(options: EtcdOpLogOptions): OpLog {
  const { cluster } = options;
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const connection = openEtcd(options.client, callTimeoutMs);
  const { client } = connection;
  const mode = options.pipelining ?? 'coalesce';
  const maxMessagesPerTxn = options.maxMessagesPerTxn ?? 100;
  if (!(
    Number.isInteger(maxMessagesPerTxn) &&
    maxMessagesPerTxn >= 1 &&
    maxMessagesPerTxn <= 126
  )) {
    throw new RangeError(
      `maxMessagesPerTxn must be an integer in [1, 126], got ${maxMessagesPerTxn}`,
    );
  }
  const lastKey = producerKey(cluster);
  const writerKey = `${clusterPrefix(cluster)}oplog/writer`;
  const followers = new Set<LogFollower>();

  async function readMessage(streamSeq: number): Promise<IKeyValue | undefined> {
    const response = await withTimeout(
      client.get(messageKey(cluster, streamSeq)).exec(),
      callTimeoutMs,
      'read message',
    );
    return response.kvs[0];
  }

  /** The first stored message (key order is stream order; no server-side sort, which reads the whole range). */
  async function firstMessage(): Promise<IKeyValue | undefined> {
    const response = await withTimeout(
      client.getAll().inRange(messageRange(cluster)).limit(1).exec(),
      callTimeoutMs,
      'bounds',
    );
    return response.kvs[0];
  }

  /** The last stored message, found through the producer key. */
  async function lastMessage(): Promise<IKeyValue | undefined> {
    const response = await withTimeout(client.get(lastKey).exec(), callTimeoutMs, 'bounds');
    const kv = response.kvs[0];
    return kv === undefined ? undefined : readMessage(producerSeq(kv.value));
  }

  async function bounds(): Promise<LogBounds> {
    const [first, last] = await Promise.all([firstMessage(), lastMessage()]);
    if (first === undefined || last === undefined)
      return { firstSeq: 0, lastSeq: 0, lastStreamSeq: 0 };
    const firstEntries = decodeBatch(new Uint8Array(first.value));
    const lastEntries = decodeBatch(new Uint8Array(last.value));
    return {
      firstSeq: firstEntries[0]?.seq ?? 0,
      lastSeq: lastEntries[lastEntries.length - 1]?.seq ?? 0,
      lastStreamSeq: streamSeqOf(last),
    };
  }

  function openWriter({
    expectedLastStreamSeq,
  }: {
    readonly expectedLastStreamSeq: number;
  }): OpLogWriter {
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
          : client
              .if(lastKey, 'Value', '==', String(expected))
              .and(writerKey, 'Value', '==', token);
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

  function follow(fromSeq: number): LogFollower {
    const queue: LogBatch[] = [];
    let failure: Error | null = null;
    let done = false;
    let wake: (() => void) | null = null;
    let watcher: Watcher | null = null;
    let nextSeq = Math.max(1, fromSeq);
    let nextStreamSeq = 0;

    const notify = (): void => {
      const w = wake;
      wake = null;
      w?.();
    };
    const fail = (error: unknown): void => {
      failure ??= error instanceof Error ? error : new Error(String(error));
      notify();
    };
    /** Queues a stored message, trimmed to the entries not yet delivered. */
    const accept = (kv: IKeyValue): void => {
      const streamSeq = streamSeqOf(kv);
      if (streamSeq < nextStreamSeq) return;
      const batch = toBatch(kv);
      const entries = batch.entries.filter((entry) => entry.seq >= nextSeq);
      if (entries.length === 0) {
        nextStreamSeq = streamSeq + 1;
        return;
      }
      if (entries[0]?.seq !== nextSeq) {
        fail(
          new Error(
            `log gap: expected entry ${nextSeq}, stream message ${streamSeq} starts at ${entries[0]?.seq}`,
          ),
        );
        return;
      }
      nextSeq = (entries[entries.length - 1]?.seq ?? nextSeq) + 1;
      nextStreamSeq = streamSeq + 1;
      queue.push({ streamSeq, entries });
      notify();
    };

    /** The stream seq of the message holding entry `seq` (binary search), or null if none yet. */
    async function locate(): Promise<number> {
      const first = await firstMessage();
      if (first === undefined) return 1;
      const firstEntries = decodeBatch(new Uint8Array(first.value));
      const firstSeq = firstEntries[0]?.seq ?? 1;
      if (nextSeq < firstSeq) throw new NotRetainedError(nextSeq, firstSeq);
      let low = streamSeqOf(first);
      const last = await lastMessage();
      let high = last === undefined ? low : streamSeqOf(last);
      while (low < high) {
        const middle = Math.ceil((low + high) / 2);
        const kv = await readMessage(middle);
        const seq =
          kv === undefined
            ? Number.POSITIVE_INFINITY
            : (decodeBatch(new Uint8Array(kv.value))[0]?.seq ?? 0);
        if (seq <= nextSeq) low = middle;
        else high = middle - 1;
      }
      return low;
    }

    async function catchUp(): Promise<void> {
      nextStreamSeq = await locate();
      let start = messageKey(cluster, nextStreamSeq);
      const end = `${clusterPrefix(cluster)}oplog/:`;
      let revision: string | undefined;
      for (;;) {
        let request = client.getAll().inRange(new Range(start, end)).limit(PAGE_SIZE);
        if (revision !== undefined) request = request.revision(revision);
        const response = await withTimeout(request.exec(), callTimeoutMs, 'follow');
        revision ??= response.header.revision;
        if (done) return;
        for (const kv of response.kvs) accept(kv);
        if (!response.more || response.kvs.length === 0) break;
        const lastKv = response.kvs[response.kvs.length - 1];
        if (lastKv === undefined) break;
        start = messageKey(cluster, streamSeqOf(lastKv) + 1);
      }
      const created = client
        .watch()
        .inRange(messageRange(cluster))
        .startRevision(String(Number(revision) + 1))
        .watcher();
      watcher = created;
      created.on('put', accept);
      created.on('error', fail);
      if (done) void created.cancel().catch(() => undefined);
    }

    catchUp().catch(fail);

    const follower: LogFollower = {
      close() {
        if (done) return;
        done = true;
        followers.delete(follower);
        void watcher?.cancel().catch(() => undefined);
        notify();
      },
      async *[Symbol.asyncIterator](): AsyncGenerator<LogBatch> {
        try {
          for (;;) {
            const batch = queue.shift();
            if (batch !== undefined) {
              yield batch;
              continue;
            }
            if (failure !== null) throw failure;
            if (done) return;
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        } finally {
          follower.close();
        }
      },
    };
    followers.add(follower);
    return follower;
  }

  return {
    openWriter,
    follow,
    bounds,
    close() {
      for (const follower of [...followers]) follower.close();
      if (connection.owned) client.close();
      return Promise.resolve();
    },
  };
}

export { EtcdUnavailableError };
