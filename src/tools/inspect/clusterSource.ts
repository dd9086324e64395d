/**
 * The live source of `understudy inspect`: finds the nodes of a cluster in etcd (the member
 * records `understudy status` reads), reads every node's status each interval, and keeps one
 * inspection stream (`/inspect/events`) open to each node. A node whose stream closes (killed,
 * stopped, partitioned) is shown as gone at once and reconnected to while etcd still lists
 * it; a node that comes back is picked up on the next round.
 */
import { request, type ClientRequest } from 'node:http';
import type { Etcd3 } from 'etcd3';
import { readClusterStatus, verificationCell } from '../clusterStatus.ts';
import type { InspectionRecord } from '../../observe/inspectionRecord.ts';
import type { InspectHub } from './inspectHub.ts';
import { INSPECT_EVENTS_PATH } from '../../process/inspectRoute.ts';

export interface ClusterSourceOptions {
  readonly client: Etcd3;
  /** The cluster, or for one group of several, the group's own name (`groupCluster`). */
  readonly cluster: string;
  /** Of a cluster of several groups, the group followed: each process answers for its member. */
  readonly group?: number | undefined;
  readonly hub: InspectHub;
  /** How often etcd and every node's status are read (ms; default 1000). */
  readonly intervalMs?: number;
  /** Bound on each status request (ms; default 1000). */
  readonly httpTimeoutMs?: number;
}

/** Splits an SSE byte stream into its `data:` payloads. */
export function sseParser(onData: (data: string) => void): (chunk: string) => void {
  let buffer = '';
  return (chunk) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (data !== '') onData(data);
    }
  };
}

export class ClusterSource {
  readonly #streams = new Map<string, { address: string; req: ClientRequest }>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #round: Promise<void> = Promise.resolve();
  /** The leader key's lease whose TTL was read last, and that TTL (ms). */
  #lease: { id: string; ttlMs: number } | undefined;

  constructor(private readonly options: ClusterSourceOptions) {}

  /** Starts the rounds (the first one at once). */
  start(): void {
    const tick = (): void => {
      this.#round = this.#readOnce().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.options.intervalMs ?? 1000);
      });
    };
    tick();
  }

  /** Stops the rounds and closes every stream. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const { req } of this.#streams.values()) req.destroy();
    this.#streams.clear();
    await this.#round;
  }

  async #readOnce(): Promise<void> {
    const { hub } = this.options;
    let status;
    try {
      status = await readClusterStatus(
        this.options.client,
        this.options.cluster,
        this.options.httpTimeoutMs ?? 1000,
        this.options.group,
      );
    } catch (err) {
      hub.setProblem(`cannot read etcd: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    hub.setProblem(status.rows.length === 0 ? await this.#noNodes(status.cluster) : undefined);
    if (status.leader !== null) await this.#readLeaseTtl();
    const now = Date.now();
    for (const row of status.rows) {
      hub.updateNode(row.id, {
        address: row.address,
        state: row.reachable ? row.state : null,
        epoch: row.reachable ? row.epoch : null,
        appliedSeq: row.reachable ? row.appliedSeq : null,
        lagEntries: row.reachable ? row.lagEntries : null,
        lagMs: row.reachable ? row.lagMs : null,
        lastVerification: row.reachable ? verificationCell(row.verification, now) : null,
        leader: row.leader,
      });
      if (!this.#stopped && row.address !== '' && row.reachable) this.#connect(row.id, row.address);
    }
  }

  /** Why no node is listed: none is, or the cluster runs in groups and none was named. */
  async #noNodes(cluster: string): Promise<string> {
    if (this.options.group === undefined) {
      const { readGroupCount } = await import('../../adapters/etcd/clusterGroupsRecord.ts');
      const groups = await readGroupCount(this.options.client, cluster).catch(() => undefined);
      if (groups !== undefined && groups > 1) {
        return `cluster ${cluster} has ${groups} groups: follow one with --group N (0..${groups - 1})`;
      }
    }
    return `no node of cluster ${cluster} in etcd`;
  }

  /**
   * The TTL etcd granted the leader key's lease (read once per lease): how long a standby waits
   * after a primary dies, which the page counts down. A failure leaves the last one known.
   */
  async #readLeaseTtl(): Promise<void> {
    const { client, cluster, hub } = this.options;
    try {
      // Loaded on use, as clusterStatus.ts does: every `understudy` command loads this module.
      const { leaderKey } = await import('../../adapters/etcd/etcdElection.ts');
      const got = await client.get(leaderKey(cluster)).exec();
      const id = got.kvs[0]?.lease;
      if (id === undefined || id === '0' || id === this.#lease?.id) return;
      const ttl = await client.leaseClient.leaseTimeToLive({ ID: id });
      const ttlMs = Number(ttl.grantedTTL) * 1000;
      if (!Number.isFinite(ttlMs) || ttlMs <= 0) return;
      this.#lease = { id, ttlMs };
      hub.setLeaseTtl(ttlMs);
    } catch {
      // the round's status read reports etcd problems
    }
  }

  /** Opens the node's inspection stream unless one is open to the same address. */
  #connect(nodeId: string, address: string): void {
    const open = this.#streams.get(nodeId);
    if (open !== undefined && open.address === address) return;
    open?.req.destroy();
    const { hub } = this.options;
    const url = new URL(INSPECT_EVENTS_PATH, address);
    if (this.options.group !== undefined) url.searchParams.set('group', String(this.options.group));
    const req = request(url, { headers: { accept: 'text/event-stream' } });
    this.#streams.set(nodeId, { address, req });
    const closed = (): void => {
      if (this.#streams.get(nodeId)?.req !== req) return;
      this.#streams.delete(nodeId);
      hub.updateNode(nodeId, { connected: false, state: null });
    };
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        closed();
        return;
      }
      hub.updateNode(nodeId, { connected: true });
      const parse = sseParser((data) => {
        try {
          hub.add(JSON.parse(data) as InspectionRecord);
        } catch {
          // a line that is not JSON is not a record
        }
      });
      res.setEncoding('utf8');
      res.on('data', parse);
      res.on('close', closed);
      res.on('error', closed);
    });
    req.on('error', closed);
    req.end();
  }
}
