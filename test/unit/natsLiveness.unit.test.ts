// How a node's NATS connection notices a hung server: the timings derived from the lease TTL,
// and the choice of the server to dial after leaving one.
import type { Server } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { natsLiveness, notTheLastDialled } from '../../src/adapters/nats/natsLiveness.ts';

const server = (port: number, lastConnect: number): Server => ({
  hostname: '127.0.0.1',
  port,
  listen: `127.0.0.1:${port}`,
  src: `nats://127.0.0.1:${port}`,
  tlsName: '',
  reconnects: 0,
  lastConnect,
  gossiped: false,
  didConnect: lastConnect > 0,
});

describe('natsLiveness', () => {
  it('a hung server is left within 3/4 of the TTL, and an append lost with it is read back within the TTL', () => {
    for (const ttl of [1000, 2000, 5000, 30_000]) {
      const { connection, ackTimeoutMs, apiTimeoutMs } = natsLiveness(ttl);
      // Stale when a ping is due with maxPingOut unanswered: at most (maxPingOut + 1) intervals.
      expect((connection.maxPingOut + 1) * connection.pingInterval).toBeLessThanOrEqual(0.75 * ttl);
      expect(ackTimeoutMs).toBeLessThan(ttl);
      expect(apiTimeoutMs).toBeLessThan(ttl);
      expect(connection.timeout).toBeLessThan(ttl);
    }
  });
});

describe('notTheLastDialled', () => {
  it('passes over the server dialled last (the one just left) when another is known', () => {
    const hung = server(4222, 5_000);
    const other = server(4223, 0);
    const third = server(4224, 1_000);
    expect(notTheLastDialled([hung, other, third])).toBe(other);
  });

  it("keeps the client's own choice otherwise", () => {
    const left = server(4222, 5_000);
    const next = server(4223, 0);
    expect(notTheLastDialled([next, left])).toBeNull();
    expect(notTheLastDialled([left])).toBeNull();
    expect(notTheLastDialled([server(4222, 0), server(4223, 0)])).toBeNull();
  });
});
