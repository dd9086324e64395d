import { Range, type Etcd3, type IKeyValue } from 'etcd3';
import { decodeBatch } from '../../domain/log/codec.ts';
import type { LogBatch, LogBounds } from '../../ports/opLog.ts';
import { clusterPrefix, withTimeout } from './etcdClient.ts';

const SEQ_DIGITS = 16;

/** `/understudy/<cluster>/oplog/last`: the producer key, the last stream seq. */
export function producerKey(cluster: string): string {
  return `${clusterPrefix(cluster)}oplog/last`;
}

/** `/understudy/<cluster>/oplog/<zero-padded stream seq>`: one message (an encoded batch). */
export function messageKey(cluster: string, streamSeq: number): string {
  return `${clusterPrefix(cluster)}oplog/${String(streamSeq).padStart(SEQ_DIGITS, '0')}`;
}

/** `/understudy/<cluster>/oplog/writer`: the token of the writer that stored the last message. */
export function writerTokenKey(cluster: string): string {
  return `${clusterPrefix(cluster)}oplog/writer`;
}

/** Every message key of the stream (not the producer or writer key). */
export function messageRange(cluster: string): Range {
  const base = `${clusterPrefix(cluster)}oplog/`;
  // Digits sort before ':', and 'last' sorts after it: the range holds the messages only.
  return new Range(`${base}0`, `${base}:`);
}

/** The stream seq a message key names. */
export function streamSeqOf(kv: IKeyValue): number {
  const name = kv.key.toString('utf8');
  return Number(name.slice(name.lastIndexOf('/') + 1));
}

/** The last stream seq the producer key's value holds (0 when there is none). */
export function producerSeq(value: Buffer | undefined): number {
  if (value === undefined) return 0;
  return Number(value.toString('utf8'));
}

/** A stored message as the batch of entries it holds. */
export function toBatch(kv: IKeyValue): LogBatch {
  return { streamSeq: streamSeqOf(kv), entries: decodeBatch(new Uint8Array(kv.value)) };
}

/** Reads of the stored stream, each bounded by the adapter's call timeout. */
export interface EtcdStreamReads {
  /** The message stored at `streamSeq`, if any. */
  readonly readMessage: (streamSeq: number) => Promise<IKeyValue | undefined>;
  /** The first stored message (key order is stream order; no server-side sort, which reads the whole range). */
  readonly firstMessage: () => Promise<IKeyValue | undefined>;
  /** The last stored message, found through the producer key. */
  readonly lastMessage: () => Promise<IKeyValue | undefined>;
  /** The stream's bounds: its first and last entries and its last stream seq. */
  readonly bounds: () => Promise<LogBounds>;
}

/** The {@link EtcdStreamReads} of `cluster`'s stream through `client`. */
export function etcdStreamReads(
  client: Etcd3,
  cluster: string,
  callTimeoutMs: number,
): EtcdStreamReads {
  const lastKey = producerKey(cluster);

  async function readMessage(streamSeq: number): Promise<IKeyValue | undefined> {
    const response = await withTimeout(
      client.get(messageKey(cluster, streamSeq)).exec(),
      callTimeoutMs,
      'read message',
    );
    return response.kvs[0];
  }

  async function firstMessage(): Promise<IKeyValue | undefined> {
    const response = await withTimeout(
      client.getAll().inRange(messageRange(cluster)).limit(1).exec(),
      callTimeoutMs,
      'bounds',
    );
    return response.kvs[0];
  }

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

  return { readMessage, firstMessage, lastMessage, bounds };
}
