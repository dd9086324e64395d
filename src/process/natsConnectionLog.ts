import type { NatsConnection, Status } from '@nats-io/nats-core';
import type { Logger } from 'pino';
import { redact } from '../config/credentials.ts';

/** A server URL as logs show it, credentials masked. */
const shown = (server: string): string => String(redact({ server })['server']);

/**
 * Logs what happens to the node's NATS connection: a server that stopped answering pings
 * (`natsStale`: hung, the connection is dropped), a lost connection (`natsDisconnected`) and
 * the server it reconnected to (`natsReconnected`). Returns the function that stops it.
 */
export function logNatsConnection(nc: NatsConnection, log: Logger): () => void {
  // The client's status iterator can be stopped, though its type does not say so.
  const statuses = nc.status() as AsyncIterable<Status> & { stop?: () => void };
  void (async () => {
    for await (const status of statuses) {
      if (status.type === 'staleConnection') {
        log.warn(
          { event: 'natsStale', server: shown(nc.getServer()) },
          'the NATS server stopped answering pings: reconnecting to another',
        );
      } else if (status.type === 'disconnect') {
        log.warn(
          { event: 'natsDisconnected', server: shown(status.server) },
          'disconnected from NATS',
        );
      } else if (status.type === 'reconnect') {
        log.info({ event: 'natsReconnected', server: shown(status.server) }, 'reconnected to NATS');
      }
    }
  })();
  return () => statuses.stop?.();
}
