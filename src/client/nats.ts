/**
 * `createClient`: the client library wired to its real transport (NATS request/reply) and the
 * system clock. Everything else of the client is transport-neutral (client.ts).
 */
import { connect } from '@nats-io/transport-node';
import { createNatsApiClientTransport } from '../adapters/nats/natsApiTransport.ts';
import { notTheLastDialled } from '../adapters/nats/natsLiveness.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { assertClusterName } from '../api/subjects.ts';
import { clientOver, type ClientOptions, type UnderstudyClient } from './client.ts';

/** The client's default ping interval (ms): a quarter of the default lease TTL. */
const DEFAULT_PING_INTERVAL_MS = 1250;

/**
 * Creates a client of `options.cluster`: over `options.transport` when given, otherwise over
 * a new NATS connection to `options.servers` (closed by {@link UnderstudyClient.close}).
 * Rejects when the connection cannot be made.
 */
export async function createClient(options: ClientOptions): Promise<UnderstudyClient> {
  assertClusterName(options.cluster);
  if (options.transport !== undefined)
    return clientOver(options.transport, false, options, systemClock);
  if (options.servers === undefined) {
    throw new TypeError('createClient: give either servers or transport');
  }
  const pingInterval = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
  const nc = await connect({
    servers: options.servers,
    maxReconnectAttempts: -1,
    pingInterval,
    maxPingOut: 2,
    // A hung server accepts TCP and never answers: do not wait the default 20 s to dial it.
    timeout: Math.max(500, 2 * pingInterval),
    reconnectToServer: notTheLastDialled,
  });
  const transport = createNatsApiClientTransport({
    nc,
    cluster: options.cluster,
    ownsConnection: true,
  });
  return clientOver(transport, true, options, systemClock);
}
