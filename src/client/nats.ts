/**
 * `createClient`: the client library wired to its real transport (NATS request/reply) and the
 * system clock. Everything else of the client is transport-neutral (client.ts).
 */
import { connect } from '@nats-io/transport-node';
import { createNatsApiClientTransport } from '../adapters/nats/natsApiTransport.ts';
import { notTheLastDialled } from '../adapters/nats/natsLiveness.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { assertClusterName } from '../api/subjects.ts';
import { assertGroupCount } from '../domain/model/groups.ts';
import { clientOver, type ClientOptions, type UnderstudyClient } from './client.ts';
import { groupedClientOver } from './groupedClient.ts';

/** The client's default ping interval (ms): a quarter of the default lease TTL. */
const DEFAULT_PING_INTERVAL_MS = 1250;

/**
 * Creates a client of `options.cluster`: over `options.transport` when given, otherwise over
 * a new NATS connection to `options.servers` (closed by {@link UnderstudyClient.close}).
 * With `options.groups` > 1, a client of every group (groupedClient.ts) over one connection,
 * or over `options.transportFor`. Rejects when the connection cannot be made.
 */
export async function createClient(options: ClientOptions): Promise<UnderstudyClient> {
  assertClusterName(options.cluster);
  const groups = options.groups ?? 1;
  assertGroupCount(groups);
  if (groups > 1 && options.transport !== undefined) {
    throw new TypeError(
      'createClient: with groups > 1 give servers or transportFor, not transport',
    );
  }
  if (groups === 1) {
    const given = options.transport ?? options.transportFor?.(options.cluster);
    if (given !== undefined) return clientOver(given, false, options, systemClock);
  }
  if (groups > 1 && options.transportFor !== undefined)
    return groupedClientOver(options.transportFor, options, groups, systemClock);
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
    // No Error built up front for every request (its stack shown only if the request fails):
    // the client's own errors carry the caller's stack, with the NATS error as their cause.
    noAsyncTraces: true,
  });
  if (groups > 1) {
    // One connection for every group: each group's transport borrows it; closing the client
    // closes it once every group's client is closed.
    return groupedClientOver(
      (cluster) => createNatsApiClientTransport({ nc, cluster, ownsConnection: false }),
      options,
      groups,
      systemClock,
      { onClose: () => nc.close() },
    );
  }
  const transport = createNatsApiClientTransport({
    nc,
    cluster: options.cluster,
    ownsConnection: true,
  });
  return clientOver(transport, true, options, systemClock);
}
