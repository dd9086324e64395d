/**
 * Finding entries in the OpLog's stream: which message holds a given entry (a binary search
 * over message heads), the log's bounds, and where a follower starts. Shared by the adapter
 * and the log tools, so both read the same stream the same way.
 *
 * A stream message either holds a batch of consecutive entries or holds none: undecodable
 * (not a batch, or not signed by the cluster's key) or gone (trimmed, purged). Such a message
 * is a **gap**: every search passes over it, and it counts as part of the next message that
 * holds entries.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { CodecError } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import { NotRetainedError, type LogBounds } from '../../ports/opLog.ts';
import type { BatchSignature } from './batchSignature.ts';

/** Reads the entries of one stream message. */
export interface StreamMessageReader {
  /**
   * The entries of stream message `streamSeq`; undefined when it is a gap (gone, undecodable
   * or holding no entry). Any other failure (not connected, timeout) rejects.
   */
  entriesAt(streamSeq: number): Promise<readonly OpLogEntry[] | undefined>;
}

/** A message held in the stream with the entries it holds (at least one). */
export interface HeldEntries {
  readonly streamSeq: number;
  readonly entries: readonly OpLogEntry[];
}

/** Reads messages of `streamName` with `getMessage`, decoding them under `signature`. */
export function jetStreamMessageReader(
  jsm: JetStreamManager,
  streamName: string,
  signature: BatchSignature,
): StreamMessageReader {
  return {
    async entriesAt(streamSeq: number): Promise<OpLogEntry[] | undefined> {
      const stored = await jsm.streams.getMessage(streamName, { seq: streamSeq });
      if (stored === null) return undefined;
      try {
        const entries = signature.decode(stored.data, stored.header);
        return entries.length > 0 ? entries : undefined;
      } catch (err) {
        if (err instanceof CodecError) return undefined;
        throw err;
      }
    },
  };
}

/**
 * The first message from `streamSeq` towards `bound` (step +1 or -1, both inclusive) that
 * holds entries, passing over gaps; undefined when none does.
 */
export async function entriesFrom(
  reader: StreamMessageReader,
  streamSeq: number,
  bound: number,
  step: 1 | -1,
): Promise<HeldEntries | undefined> {
  for (let seq = streamSeq; step > 0 ? seq <= bound : seq >= bound; seq += step) {
    const entries = await reader.entriesAt(seq);
    if (entries !== undefined && entries.length > 0) return { streamSeq: seq, entries };
  }
  return undefined;
}

/**
 * The stream message to read from so that entry `seq` is not passed over: the last message in
 * `[fromStreamSeq, toStreamSeq]` holding entries whose first entry is at most `seq` (binary
 * search; message heads grow with the stream sequence). Gaps are passed over and belong to the
 * next message holding entries: a gap before the answer can only have held entries before
 * `seq`, and every gap after it is read. Undefined when no message in the range holds an
 * entry at most `seq`.
 *
 * Reads O(log n) messages when there are no gaps; a run of gaps is read through once per step
 * that lands in it. `fromHolds` says the caller knows message `fromStreamSeq` holds entries
 * starting at or before `seq` (it is then not read again).
 */
export async function findMessageHoldingSeq(
  reader: StreamMessageReader,
  seq: number,
  fromStreamSeq: number,
  toStreamSeq: number,
  fromHolds = false,
): Promise<number | undefined> {
  let low = fromStreamSeq;
  let high = toStreamSeq;
  // Once set, `low` is a message holding entries that starts at or before `seq`.
  let lowHolds = fromHolds;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    const found = await entriesFrom(reader, mid, high, 1);
    const head = found?.entries[0]?.seq;
    if (found === undefined || head === undefined || head > seq) high = mid - 1;
    else {
      low = found.streamSeq;
      lowHolds = true;
    }
  }
  if (lowHolds) return low;
  if (low < fromStreamSeq || low > toStreamSeq) return undefined;
  const found = await entriesFrom(reader, low, low, 1);
  const head = found?.entries[0]?.seq;
  return head !== undefined && head <= seq ? low : undefined;
}

/** What the stream holds: its first and last message sequences and its message count. */
export interface StreamState {
  readonly firstStreamSeq: number;
  readonly lastStreamSeq: number;
  readonly messages: number;
}

/** The log's bounds in a stream in `state` (entries 0 when it holds none). */
export async function logBounds(
  reader: StreamMessageReader,
  state: StreamState,
): Promise<LogBounds> {
  const { firstStreamSeq, lastStreamSeq } = state;
  // Empty (never written, trimmed or purged): last_seq is still the last message's sequence.
  if (state.messages === 0) return { firstSeq: 0, lastSeq: 0, lastStreamSeq };
  const first = await entriesFrom(reader, firstStreamSeq, lastStreamSeq, 1);
  if (first === undefined) return { firstSeq: 0, lastSeq: 0, lastStreamSeq };
  const last = await entriesFrom(reader, lastStreamSeq, first.streamSeq, -1);
  return {
    firstSeq: first.entries[0]?.seq ?? 0,
    lastSeq: last?.entries[last.entries.length - 1]?.seq ?? 0,
    lastStreamSeq,
  };
}

/**
 * The stream sequence to follow from so that entry `fromSeq` is the first delivered: right
 * after message `afterStreamSeq` when the reader knows it (and the stream got that far), else
 * the message holding `fromSeq`, or the next message to be stored when it is not stored yet.
 * Rejects with {@link NotRetainedError} when `fromSeq` was trimmed away.
 */
export async function followStartStreamSeq(
  reader: StreamMessageReader,
  state: StreamState,
  fromSeq: number,
  afterStreamSeq?: number,
): Promise<number> {
  const { firstStreamSeq, lastStreamSeq, messages } = state;
  if (afterStreamSeq !== undefined && afterStreamSeq > 0 && afterStreamSeq <= lastStreamSeq) {
    // Messages after it were trimmed away (first_seq is last_seq + 1 in an emptied stream).
    if (firstStreamSeq > afterStreamSeq + 1) {
      const first = await entriesFrom(reader, firstStreamSeq, lastStreamSeq, 1);
      throw new NotRetainedError(fromSeq, first?.entries[0]?.seq ?? fromSeq + 1);
    }
    return afterStreamSeq + 1;
  }
  // Empty: the first message to come must hold fromSeq (checked by the follower).
  if (messages === 0) return lastStreamSeq + 1;
  const first = await entriesFrom(reader, firstStreamSeq, lastStreamSeq, 1);
  const firstRetained = first?.entries[0]?.seq;
  // Nothing but undecodable messages: the first to come must hold fromSeq.
  if (first === undefined || firstRetained === undefined) return lastStreamSeq + 1;
  if (fromSeq < firstRetained) throw new NotRetainedError(fromSeq, firstRetained);
  const last = await entriesFrom(reader, lastStreamSeq, first.streamSeq, -1);
  const lastStored = last?.entries[last.entries.length - 1]?.seq ?? 0;
  if (last === undefined || fromSeq > lastStored) return lastStreamSeq + 1;
  // `first` starts at or before fromSeq, so some message in the range holds it.
  return (
    (await findMessageHoldingSeq(reader, fromSeq, first.streamSeq, last.streamSeq, true)) ??
    first.streamSeq
  );
}
