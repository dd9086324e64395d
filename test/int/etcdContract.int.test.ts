// The Elector and OpLog contracts against etcd: each test gets its own etcd.
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { createEtcdElector } from '../../src/adapters/etcd/etcdElector.ts';
import { createEtcdOpLog } from '../../src/adapters/etcd/etcdOpLog.ts';
import type { EtcdOpLogPipelining } from '../../src/adapters/etcd/etcdOpLogWriter.ts';
import { systemClock } from '../../src/adapters/systemClock.ts';
import type { Elector } from '../../src/ports/elector.ts';
import type { OpLog } from '../../src/ports/opLog.ts';
import { describeElectorContract } from '../contract/elector.contract.ts';
import { describeOpLogContract } from '../contract/opLog.contract.ts';
import { startEtcd, startTcpProxy, type TcpProxyHandle } from '../harness/index.ts';

describeElectorContract('etcd', async () => {
  const etcd = await startEtcd();
  const cluster = `c${randomUUID().slice(0, 8)}`;
  // Every elector reaches etcd through its own proxy, so one node can be cut off alone.
  const proxies = new Map<string, TcpProxyHandle>();
  /** Every proxy opened (two electors may share a node id). */
  const opened: TcpProxyHandle[] = [];
  const electors: Elector[] = [];
  return {
    async makeElector(nodeId: string, ttlMs: number): Promise<Elector> {
      const proxy = await startTcpProxy(etcd.port);
      proxies.set(nodeId, proxy);
      opened.push(proxy);
      const elector = createEtcdElector({
        client: { endpoints: [`http://127.0.0.1:${proxy.port}`] },
        cluster,
        nodeId,
        ttlMs,
        clock: systemClock,
      });
      electors.push(elector);
      return elector;
    },
    advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    isolate(nodeId: string): Promise<void> {
      const proxy = proxies.get(nodeId);
      if (proxy === undefined) throw new Error(`no elector ${nodeId}`);
      proxy.cut();
      return Promise.resolve();
    },
    async compact() {
      const client = new Etcd3({ hosts: [etcd.endpoint] });
      try {
        const { header } = await client.get('compact').exec();
        await client.kv.compact({ revision: header.revision, physical: true });
      } finally {
        client.close();
      }
    },
    async cleanup() {
      await Promise.allSettled(electors.map((elector) => elector.close()));
      await Promise.allSettled(opened.map((proxy) => proxy.close()));
      await etcd[Symbol.asyncDispose]();
    },
  };
});

for (const pipelining of ['coalesce', 'concurrent'] as const satisfies EtcdOpLogPipelining[]) {
  describeOpLogContract(
    `etcd (${pipelining})`,
    async () => {
      const etcd = await startEtcd();
      const cluster = `c${randomUUID().slice(0, 8)}`;
      const logs: OpLog[] = [];
      return {
        makeLog(): Promise<OpLog> {
          const log = createEtcdOpLog({
            client: { endpoints: [etcd.endpoint] },
            cluster,
            pipelining,
          });
          logs.push(log);
          return Promise.resolve(log);
        },
        async cleanup() {
          await Promise.allSettled(logs.map((log) => log.close()));
          await etcd[Symbol.asyncDispose]();
        },
      };
    },
    { trims: false, undecodable: false },
  );
}
