/**
 * How fast a node notices a hung NATS server (a process stopped or wedged with its sockets
 * open: TCP stays up, nothing answers) and how long its JetStream calls wait, all derived from
 * the lease TTL so that a hang costs about one TTL, not the client's defaults (a ping every
 * 2 minutes, 5 s per call, 20 s to dial).
 */
import type { Server } from '@nats-io/nats-core';

/** What a node's NATS connection and OpLog wait for, for one lease TTL. */
export interface NatsLiveness {
  /** Options for `connect()` of `@nats-io/transport-node`. */
  readonly connection: {
    /** A PING every this many ms. */
    readonly pingInterval: number;
    /**
     * The connection is stale (closed and dialled again, to the next server of the list or
     * of the cluster) when a ping is due while this many are still unanswered.
     */
    readonly maxPingOut: number;
    /** How long one dial may take (a hung server accepts TCP but never says INFO). */
    readonly timeout: number;
    /** Picks the server to dial: see {@link notTheLastDialled}. */
    readonly reconnectToServer: (pool: readonly Server[]) => Server | null;
  };
  /** How long one OpLog publish waits for its acknowledgement before reading back. */
  readonly ackTimeoutMs: number;
  /** How long one JetStream API request (stream info, get message, consumer) waits. */
  readonly apiTimeoutMs: number;
}

/** Pings outstanding before the connection counts as stale. */
export const MAX_PINGS_OUT = 2;

/**
 * The liveness settings for a lease TTL: a ping every TTL/4 with 2 outstanding at most, so a
 * hung server is left between 2 and 3 ping intervals (TTL/2 to 3/4 TTL) after it stopped
 * answering; a dial of TTL/2 (at least 500 ms); an ack timeout of TTL/2, so an append lost
 * with the connection is read back and sent again within the TTL the primary gives a stalled
 * append (`appendStallMs`); API requests of TTL/4 (at least 500 ms), so a promotion can ask
 * for the log's bounds again after a reconnect within its own deadline (the TTL).
 */
export function natsLiveness(leaseTtlMs: number): NatsLiveness {
  const quarter = Math.floor(leaseTtlMs / 4);
  const half = Math.floor(leaseTtlMs / 2);
  return {
    connection: {
      pingInterval: Math.max(100, quarter),
      maxPingOut: MAX_PINGS_OUT,
      timeout: Math.max(500, half),
      reconnectToServer: notTheLastDialled,
    },
    ackTimeoutMs: Math.max(500, half),
    apiTimeoutMs: Math.max(500, quarter),
  };
}

/**
 * The server to dial next: the client's own choice (`pool[0]`, null) unless it is the server
 * dialled last, when another one is known. Right after a connection is lost that is the server
 * just left, which the client would otherwise dial first again: a hung one costs a whole dial
 * timeout before the next server is tried. Within a dial loop it is the server that just failed.
 */
export function notTheLastDialled(pool: readonly Server[]): Server | null {
  let last: Server | undefined;
  for (const server of pool) {
    if (server.lastConnect > 0 && (last === undefined || server.lastConnect > last.lastConnect)) {
      last = server;
    }
  }
  if (last === undefined || pool[0]?.listen !== last.listen) return null;
  return pool.find((server) => server.listen !== last.listen) ?? null;
}
