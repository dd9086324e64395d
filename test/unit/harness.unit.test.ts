import { createServer, connect, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  ChildExitedError,
  ChildNotReadyError,
  ChildServer,
  freePort,
  freePorts,
  startTcpProxy,
} from '../harness/index.ts';

/** An echo server on a random loopback port. */
async function echoServer(): Promise<Server & AsyncDisposable> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(server, {
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** A client that collects what it receives. */
async function client(port: number) {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  return {
    socket,
    received: () => received,
    closed: () => closed,
  };
}

async function until(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('freePort', () => {
  it('returns distinct bindable loopback ports', async () => {
    const ports = await freePorts(3);
    expect(new Set(ports).size).toBe(3);
    const port = await freePort();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('tcp proxy', () => {
  it('forwards, cuts, blackholes and restores', async () => {
    await using echo = await echoServer();
    await using proxy = await startTcpProxy(portOf(echo));

    const a = await client(proxy.port);
    a.socket.write('ping');
    await until('echo through the proxy', () => a.received() === 'ping');

    proxy.cut();
    await until('cut closes open connections', () => a.closed());
    const refused = await client(proxy.port);
    await until('cut closes new connections', () => refused.closed());

    proxy.restore();
    const b = await client(proxy.port);
    b.socket.write('one');
    await until('forwarding again', () => b.received() === 'one');

    proxy.blackhole();
    b.socket.write('lost');
    const c = await client(proxy.port);
    c.socket.write('lost too');
    await sleep(200);
    expect(b.received()).toBe('one');
    expect(c.received()).toBe('');
    expect(b.closed() || c.closed()).toBe(false);

    proxy.restore();
    const d = await client(proxy.port);
    d.socket.write('back');
    await until('new connections forward after restore', () => d.received() === 'back');
    b.socket.write('still dead');
    await sleep(200);
    expect(b.received()).toBe('one');
    for (const each of [b, c, d]) each.socket.destroy();
  });
});

describe('ChildServer', () => {
  const node = process.execPath;

  it('reports a child that exits at start with its output', async () => {
    const child = new ChildServer({
      name: 'failing',
      command: node,
      args: ['-e', 'console.error("bad flag --nope"); process.exit(3)'],
      isReady: () => Promise.resolve(false),
    });
    const error = await child.start().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ChildExitedError);
    expect(error).toMatchObject({ exitCode: 3 });
    expect((error as ChildExitedError).outputTail).toContain('bad flag --nope');
  });

  it('gives up on a child that never becomes ready, and kills it', async () => {
    const child = new ChildServer({
      name: 'slow',
      command: node,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      isReady: () => Promise.resolve(false),
      readyTimeoutMs: 300,
    });
    await expect(child.start()).rejects.toBeInstanceOf(ChildNotReadyError);
    expect(child.running).toBe(false);
  });

  it('stops, kills, restarts, and fails later calls after an unexpected exit', async () => {
    const child = new ChildServer({
      name: 'sleeper',
      command: node,
      args: ['-e', 'console.log("up"); setInterval(() => {}, 1000)'],
      isReady: () => Promise.resolve(true),
    });
    await child.start();
    const first = child.pid;
    expect(first).toBeDefined();
    child.pause();
    child.resume();
    await child.restart();
    expect(child.pid).not.toBe(first);
    await child.stop();
    expect(child.running).toBe(false);
    await child.start();
    const pid = child.pid;
    if (pid === undefined) throw new Error('no pid');
    process.kill(pid, 'SIGKILL');
    await until('the exit is seen', () => !child.running);
    expect(() => child.pause()).toThrow(ChildExitedError);
    await expect(child.restart()).rejects.toBeInstanceOf(ChildExitedError);
    await child.stop();
  });
});
