// A free loopback TCP port for the servers the demo and the tests start: never a fixed port.
import { createServer } from 'node:net';

/**
 * Resolves with a TCP port on 127.0.0.1 that was free a moment ago (the OS picked it for a
 * listener on port 0, which is then closed). Another process may still take it before the
 * caller binds it: starters retry with a fresh port when that happens.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: the listener has no TCP address'));
        return;
      }
      const { port } = address;
      server.close((err) => (err === undefined ? resolve(port) : reject(err)));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
