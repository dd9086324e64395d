import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { MemberRecord } from '../../src/ports/elector.ts';
import { probePeerOverHttp } from '../../src/process/switchoverRoute.ts';

const servers: Server[] = [];

/** A peer on a random loopback port answering /status with `handler`. */
async function peer(handler: Parameters<typeof createServer>[1]): Promise<MemberRecord> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const address = `http://127.0.0.1:${port}`;
  return { nodeId: 'p', role: 'standby', epoch: 1, appliedSeq: 0, address, updatedAt: 0 };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('probePeerOverHttp', () => {
  it("reads the peer's role and applied seq from /status", async () => {
    const member = await peer((req, res) => {
      expect(req.url).toBe('/status');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ nodeId: 'p', role: 'standby', appliedSeq: 42, epoch: 3 }));
    });
    await expect(probePeerOverHttp(member)).resolves.toEqual({ role: 'standby', appliedSeq: 42 });
  });

  it('rejects a non-200 answer, a body that is not JSON, and a silent peer', async () => {
    const failing = await peer((_req, res) => {
      res.statusCode = 503;
      res.end('not ready');
    });
    await expect(probePeerOverHttp(failing)).rejects.toThrow(/503/);
    const garbled = await peer((_req, res) => res.end('{'));
    await expect(probePeerOverHttp(garbled)).rejects.toThrow();
    const silent = await peer(() => undefined);
    await expect(probePeerOverHttp(silent, 100)).rejects.toThrow(/no \/status in 100 ms/);
  });
});
