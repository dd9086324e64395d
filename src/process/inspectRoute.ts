/**
 * `GET /inspect/events` on a node's HTTP server: its inspection records as Server-Sent Events
 * (one record per `data:` line), starting with the root actor as it is now. `understudy
 * inspect` reads it from every node it finds in etcd.
 */
import type { HttpRoute } from './httpServer.ts';
import { allowMethods } from './httpRequests.ts';
import type { NodeInspection } from '../observe/nodeInspection.ts';

export const INSPECT_EVENTS_PATH = '/inspect/events';

/** A reader this far behind (bytes not yet sent) is disconnected rather than buffered for. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** The route serving `inspection` as an event stream; a comment line every 15 s keeps it open. */
export function inspectEventsRoute(inspection: NodeInspection, heartbeatMs = 15_000): HttpRoute {
  return (req, res) => {
    if (!allowMethods(req, res, ['GET'])) return;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write(': understudy inspection records\n\n');
    let unsubscribe = (): void => undefined;
    const send = (record: unknown): void => {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        unsubscribe();
        res.destroy();
        return;
      }
      res.write(`data: ${JSON.stringify(record)}\n\n`);
    };
    for (const record of inspection.current()) send(record);
    unsubscribe = inspection.subscribe(send);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), heartbeatMs);
    heartbeat.unref();
    req.once('close', () => {
      unsubscribe();
      clearInterval(heartbeat);
    });
  };
}
