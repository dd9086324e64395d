// A TCP proxy on loopback that tests can cut or blackhole, to simulate network partitions
// between a client (a node) and a server (NATS, etcd) without touching either process.
import { connect, createServer, type Socket } from 'node:net';

/** A running proxy. `[Symbol.asyncDispose]` closes it and every connection through it. */
export interface TcpProxyHandle extends AsyncDisposable {
  /** Where clients connect (on 127.0.0.1). */
  readonly port: number;
  /** Destroys every open connection and closes new ones at once. */
  cut(): void;
  /**
   * Keeps connections open but silently drops every byte both ways, on open and new
   * connections alike (the peers see a silent network, not a reset).
   */
  blackhole(): void;
  /**
   * Forwards again: new connections are forwarded; connections that were blackholed stay
   * open and keep dropping bytes (dead), as a real peer would find them after a partition.
   */
  restore(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

type Mode = 'forward' | 'cut' | 'blackhole';

interface Pipe {
  readonly client: Socket;
  server: Socket | undefined;
  dropping: boolean;
}

function forward(from: Socket, to: () => Socket | undefined, pipe: Pipe): void {
  from.on('data', (chunk: Buffer) => {
    const target = to();
    if (pipe.dropping || target === undefined || target.destroyed) return;
    if (!target.write(chunk)) {
      from.pause();
      target.once('drain', () => from.resume());
    }
  });
}

/** Starts a proxy from a random loopback port to `targetHost:targetPort` (default 127.0.0.1). */
export async function startTcpProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
): Promise<TcpProxyHandle> {
  let mode: Mode = 'forward';
  const pipes = new Set<Pipe>();

  const destroy = (pipe: Pipe): void => {
    pipe.client.destroy();
    pipe.server?.destroy();
    pipes.delete(pipe);
  };

  const server = createServer((client) => {
    client.on('error', () => undefined);
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const pipe: Pipe = { client, server: undefined, dropping: mode === 'blackhole' };
    pipes.add(pipe);
    client.on('close', () => {
      if (!pipe.dropping) destroy(pipe);
    });
    forward(client, () => pipe.server, pipe);
    if (pipe.dropping) return; // a blackholed connection never reaches the target
    const upstream = connect(targetPort, targetHost);
    pipe.server = upstream;
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      if (!pipe.dropping) destroy(pipe);
    });
    forward(upstream, () => pipe.client, pipe);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no address');

  const close = async (): Promise<void> => {
    for (const pipe of [...pipes]) destroy(pipe);
    if (!server.listening) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    port: address.port,
    cut() {
      mode = 'cut';
      for (const pipe of [...pipes]) destroy(pipe);
    },
    blackhole() {
      mode = 'blackhole';
      for (const pipe of pipes) pipe.dropping = true;
    },
    restore() {
      mode = 'forward';
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
