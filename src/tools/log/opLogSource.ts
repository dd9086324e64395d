/**
 * An {@link OpLog} (the port a node follows: the memory log of the simulation, or a NATS one)
 * as a log source, so that the log reader (logReader.ts) reads it as it reads the live stream
 * and export files.
 */
import type { OpLog } from '../../ports/opLog.ts';
import type { LogItem, LogSource } from './logItem.ts';
import { MessageItems } from './messageItems.ts';

/**
 * Reads `opLog` through its follower, up to its end as it is when a read starts. A message
 * that does not decode (`undecodable`) is a `bad` item. It has no checkpoints: a `base`
 * request is ignored. `close` closes the log.
 */
export function opLogSource(opLog: OpLog, description = 'the OpLog'): LogSource {
  return {
    description,
    async *read(fromSeq: number, toSeq?: number): AsyncIterable<LogItem> {
      const bounds = await opLog.bounds();
      if (bounds.lastSeq < fromSeq) return;
      const cursor = new MessageItems(fromSeq, toSeq);
      const follower = opLog.follow(Math.max(fromSeq, bounds.firstSeq));
      try {
        for await (const batch of follower) {
          if (batch.undecodable !== undefined) {
            yield cursor.undecodable(batch.streamSeq, batch.undecodable);
          }
          yield* cursor.entries(batch.entries, batch.streamSeq);
          if (cursor.done || batch.streamSeq >= bounds.lastStreamSeq) break;
        }
      } finally {
        follower.close();
      }
    },
    close: () => opLog.close(),
  };
}
