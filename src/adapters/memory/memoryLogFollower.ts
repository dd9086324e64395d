import {
  NotRetainedError,
  type FollowOptions,
  type LogBatch,
  type LogFollower,
} from '../../ports/opLog.ts';
import type { MemoryLogLink } from './memoryLogLink.ts';

/**
 * A follower of one node over its {@link MemoryLogLink}: yields each entry from `fromSeq` on
 * exactly once and in order (starting inside a message when `fromSeq` falls in one), every
 * message after the last one delivered in stream order (undecodable ones as such), and waits
 * for more; throws {@link NotRetainedError} when `fromSeq` (or its position) was trimmed away.
 * It stalls while the node is partitioned or its followers were stalled after it opened. It is
 * in `followers` while open.
 */
export function followMemoryLog(
  link: MemoryLogLink,
  followers: Set<LogFollower>,
  fromSeq: number,
  followOptions?: FollowOptions,
): LogFollower {
  const { store, nodeId } = link;
  let position = Math.max(1, fromSeq);
  let followerClosed = false;
  const stalls = store.stallCount(nodeId);
  let wake: (() => void) | undefined;
  const unsubscribe = store.subscribe(() => wake?.());

  const waitForChange = (): Promise<void> =>
    new Promise((resolve) => {
      wake = () => {
        wake = undefined;
        resolve();
      };
    });

  /**
   * The last stream message delivered; until the first delivery, the one before the message
   * holding `fromSeq` (undecodable messages before it are not this follower's to report).
   */
  let streamPosition: number | undefined;
  const known = followOptions?.afterStreamSeq;
  // Right after a message the reader knows, unless the stream never got that far (recreated).
  if (known !== undefined && known > 0 && known <= store.lastStreamSeq) streamPosition = known;

  const next = async (): Promise<IteratorResult<LogBatch>> => {
    for (;;) {
      if (followerClosed || link.closed()) return { done: true, value: undefined };
      if (store.isPartitioned(nodeId) || store.stallCount(nodeId) > stalls) {
        await waitForChange();
        continue;
      }
      const first = store.firstRetainedSeq;
      const messages = store.messages();
      // Before the first delivery: is `fromSeq` still retained? After: was anything after the
      // last message delivered trimmed away?
      const trimmedAway =
        streamPosition === undefined
          ? position < first
          : (messages[0]?.streamSeq ?? store.lastStreamSeq + 1) > streamPosition + 1;
      if (trimmedAway) {
        follower.close();
        throw new NotRetainedError(position, first);
      }
      if (streamPosition === undefined) {
        const holding = messages.find(
          (m) => (m.entries[m.entries.length - 1]?.seq ?? 0) >= position,
        );
        if (holding === undefined) {
          // Not stored yet: what comes after the stream's last message is this follower's.
          streamPosition = store.lastStreamSeq;
          continue;
        }
        streamPosition = holding.streamSeq - 1;
      }
      // Every message after the last delivered, in stream order: the entries' seqs need not
      // rise (an outsider's may hold any), the reader tells the log's from foreign ones.
      const after = streamPosition;
      const message = messages.find((m) => m.streamSeq > after);
      if (message === undefined) {
        await waitForChange();
        continue;
      }
      streamPosition = message.streamSeq;
      if (message.undecodable !== undefined) {
        return {
          done: false,
          value: { streamSeq: message.streamSeq, entries: [], undecodable: message.undecodable },
        };
      }
      const entries = message.entries.filter((entry) => entry.seq >= fromSeq);
      const last = entries[entries.length - 1];
      if (last !== undefined) position = Math.max(position, last.seq + 1);
      return { done: false, value: { streamSeq: message.streamSeq, entries } };
    }
  };

  const follower: LogFollower = {
    close() {
      if (followerClosed) return;
      followerClosed = true;
      unsubscribe();
      followers.delete(follower);
      wake?.();
    },
    [Symbol.asyncIterator]() {
      return {
        next,
        return: () => {
          follower.close();
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
  followers.add(follower);
  return follower;
}
