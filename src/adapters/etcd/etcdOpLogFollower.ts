import { Range, type Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { decodeBatch } from '../../domain/log/codec.ts';
import { NotRetainedError, type LogBatch, type LogFollower } from '../../ports/opLog.ts';
import { clusterPrefix, withTimeout } from './etcdClient.ts';
import {
  messageKey,
  messageRange,
  streamSeqOf,
  toBatch,
  type EtcdStreamReads,
} from './etcdStream.ts';

/** Messages read per range request while catching up. */
const PAGE_SIZE = 500;

/** What a follower needs of its log: the connection, the stream, and its set of open followers. */
export interface EtcdFollowerContext {
  readonly client: Etcd3;
  readonly cluster: string;
  readonly callTimeoutMs: number;
  readonly reads: EtcdStreamReads;
  readonly followers: Set<LogFollower>;
}

/**
 * A follower of `cluster`'s stream from entry `fromSeq`: finds the message holding it (binary
 * search), reads on from there in pages at one revision, then watches for later messages.
 * Fails with {@link NotRetainedError} when `fromSeq` was trimmed, or entries after it were (a
 * gap between the messages it reads).
 * It is in `followers` while open.
 */
export function followEtcdOpLog(context: EtcdFollowerContext, fromSeq: number): LogFollower {
  const { client, cluster, callTimeoutMs, followers } = context;
  const { readMessage, firstMessage, lastMessage } = context.reads;
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
    const firstSeq = entries[0]?.seq ?? nextSeq;
    if (firstSeq !== nextSeq) {
      // The messages between were deleted (a trim while this follower read its pages): the
      // entries are gone, as when `fromSeq` itself was trimmed, and the node syncs at once.
      fail(new NotRetainedError(nextSeq, firstSeq));
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
