import { connect as connectTcp } from 'node:net';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startEtcd, startNats, startNatsCluster, startTcpProxy } from '../harness/index.ts';

/** Resolves with the first line a TCP server sends (NATS sends `INFO {...}`), or rejects. */
function firstLine(port: number, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('timeout'));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text.slice(0, end));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('closed'));
    });
  });
}

async function etcdHealthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
    return ((await response.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

describe('test harness', () => {
  it('starts, pauses, kills and restarts nats-server on the same port and store', async () => {
    let storeDir: string;
    {
      await using nats = await startNats();
      storeDir = nats.storeDir;
      expect(nats.url).toBe(`nats://127.0.0.1:${nats.port}`);
      expect(await firstLine(nats.port)).toMatch(/^INFO .*"jetstream":true/);
      nats.pause();
      await expect(firstLine(nats.port, 500)).rejects.toThrow('timeout');
      nats.resume();
      expect(await firstLine(nats.port)).toMatch(/^INFO /);
      const pid = nats.pid;
      await nats.kill();
      expect(nats.pid).toBeUndefined();
      await expect(firstLine(nats.port)).rejects.toThrow();
      await nats.restart();
      expect(nats.pid).not.toBe(pid);
      expect(await firstLine(nats.port)).toMatch(/^INFO /);
      await nats.stop();
      expect(nats.pid).toBeUndefined();
    }
    expect(existsSync(storeDir)).toBe(false);
  });

  it('starts a 3-server JetStream cluster with an agreed meta leader', async () => {
    await using cluster = await startNatsCluster(3);
    expect(cluster.servers).toHaveLength(3);
    expect(new Set(cluster.urls).size).toBe(3);
    for (const server of cluster.servers) {
      expect(await firstLine(server.port)).toMatch(/^INFO .*"cluster":"understudy-/);
    }
    const member = cluster.servers[1];
    if (member === undefined) throw new Error('no second server');
    await member.kill();
    await member.restart();
    expect(await firstLine(member.port)).toMatch(/^INFO .*"cluster":"understudy-/);
  });

  it('starts, pauses, kills and restarts etcd', async () => {
    let dataDir: string;
    {
      await using etcd = await startEtcd();
      dataDir = etcd.dataDir;
      expect(await etcdHealthy(etcd.endpoint)).toBe(true);
      etcd.pause();
      expect(await etcdHealthy(etcd.endpoint)).toBe(false);
      etcd.resume();
      await expect.poll(() => etcdHealthy(etcd.endpoint), { timeout: 20_000 }).toBe(true);
      await etcd.kill();
      expect(await etcdHealthy(etcd.endpoint)).toBe(false);
      await etcd.restart();
      expect(await etcdHealthy(etcd.endpoint)).toBe(true);
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  it('reports an unexpected exit with the output tail', async () => {
    await using nats = await startNats();
    const pid = nats.pid;
    if (pid === undefined) throw new Error('no pid');
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => nats.pid, { timeout: 10_000 }).toBeUndefined();
    expect(() => nats.pause()).toThrow(/exited unexpectedly.*signal SIGKILL/s);
  });

  it('proxies, cuts, blackholes and restores a TCP path', async () => {
    await using nats = await startNats({ jetstream: false });
    await using proxy = await startTcpProxy(nats.port);
    expect(await firstLine(proxy.port)).toMatch(/^INFO /);
    proxy.cut();
    await expect(firstLine(proxy.port)).rejects.toThrow();
    proxy.restore();
    expect(await firstLine(proxy.port)).toMatch(/^INFO /);
    proxy.blackhole();
    await expect(firstLine(proxy.port, 500)).rejects.toThrow('timeout');
    proxy.restore();
    expect(await firstLine(proxy.port)).toMatch(/^INFO /);
  });
});
