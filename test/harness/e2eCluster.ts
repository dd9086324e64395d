// The cluster of the end-to-end and integration tests: node processes (three unless told)
// over one real etcd and one real nats-server, a client, and storage segments mounted; each
// started part registers its own cleanup.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { expect } from 'vitest';
import { type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import {
  NodeFleet,
  type FleetOptions,
  type NodeHandle,
} from '../../src/tools/localCluster/nodeFleet.ts';
import { startEtcd, startNats, type EtcdHandle, type NatsServerHandle } from './index.ts';

export interface E2eCluster {
  readonly etcd: EtcdHandle;
  readonly nats: NatsServerHandle;
  /** A connection of the test's own (not a node's). */
  readonly nc: NatsConnection;
  readonly fleet: NodeFleet;
  readonly client: UnderstudyClient;
}

export interface E2eClusterOptions {
  readonly cluster: string;
  /** The node ids (default n1, n2, n3). */
  readonly nodes?: readonly string[];
  readonly leaseTtlMs: number;
  /** More `understudy node` flags for every node. */
  readonly extraArgs?: readonly string[];
  /** The client's overall deadline per call (ms). */
  readonly deadlineMs: number;
  /** The client's timeout per request (ms; default 500). */
  readonly requestTimeoutMs?: number;
  /** The client's longest backoff between attempts (ms; default: the client's own backoff). */
  readonly maxBackoffMs?: number;
  /** More environment variables for one node's process (see `FleetOptions.nodeEnv`). */
  readonly nodeEnv?: FleetOptions['nodeEnv'];
  /** The segments to mount: [segment id, storage node]. */
  readonly segments: readonly (readonly [string, string])[];
  /** The size of each segment (bytes; default 1 GiB). */
  readonly segmentSize?: number;
}

/** Starts the cluster; `cleanups` gets what stops each part, to be run in reverse order. */
export async function startE2eCluster(
  cleanups: Array<() => Promise<void>>,
  options: E2eClusterOptions,
): Promise<E2eCluster> {
  const etcd = await startEtcd();
  cleanups.push(async () => {
    await etcd[Symbol.asyncDispose]();
  });
  const nats = await startNats();
  cleanups.push(async () => {
    await nats[Symbol.asyncDispose]();
  });
  const nc = await connect({ servers: nats.url });
  cleanups.push(() => nc.close());
  const fleet = await NodeFleet.start(options.nodes ?? ['n1', 'n2', 'n3'], {
    cluster: options.cluster,
    nats: [nats.url],
    etcd: [etcd.endpoint],
    leaseTtlMs: options.leaseTtlMs,
    ...(options.extraArgs === undefined ? {} : { extraArgs: options.extraArgs }),
    ...(options.nodeEnv === undefined ? {} : { nodeEnv: options.nodeEnv }),
  });
  cleanups.push(() => fleet[Symbol.asyncDispose]());
  await fleet.primary(60_000);
  // Every node is up, not only the primary: on a loaded machine a process can take seconds to
  // start, and a test that reads each node's /status must not meet one still loading.
  await Promise.all(fleet.nodes.map((n) => n.waitForStatus((s) => s.role !== 'starting', 60_000)));
  const client = await createClient({
    servers: nats.url,
    cluster: options.cluster,
    requestTimeoutMs: options.requestTimeoutMs ?? 500,
    deadlineMs: options.deadlineMs,
    ...(options.maxBackoffMs === undefined
      ? {}
      : { backoff: { initialMs: 10, maxMs: options.maxBackoffMs } }),
  });
  cleanups.push(() => client.close());
  for (const [segment, node] of options.segments) {
    await client.mountSegment(segment, node, options.segmentSize ?? 1 << 30);
  }
  return { etcd, nats, nc, fleet, client };
}

/**
 * Every running node other than `primary` (default: the current primary) that reaches the
 * primary's applied seq has the primary's state digest.
 */
export async function expectEqualDigests(fleet: NodeFleet, primary?: NodeHandle): Promise<void> {
  const reference = primary ?? (await fleet.primary(30_000));
  const target = await reference.status(true);
  for (const node of fleet.nodes.filter((n) => n.running && n !== reference)) {
    const status = await node.waitForStatus((s) => s.appliedSeq >= target.appliedSeq, 30_000, true);
    if (status.appliedSeq === target.appliedSeq) expect(status.digest).toBe(target.digest);
  }
}

/** Runs what {@link startE2eCluster} registered, newest first, going on past failures. */
export async function stopAll(cleanups: Array<() => Promise<void>>): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}

/**
 * The two-node cluster of the surface tests (lease TTL 3 s, the client's own timeouts, a
 * 30 s deadline, segments s1-seg and s2-seg unless `segments` says otherwise), with its primary
 * and its standby once that node is a standby.
 */
export async function startTwoNodes(
  cleanups: Array<() => Promise<void>>,
  cluster: string,
  options: Partial<E2eClusterOptions> = {},
): Promise<E2eCluster & { readonly primary: NodeHandle; readonly standby: NodeHandle }> {
  const started = await startE2eCluster(cleanups, {
    cluster,
    nodes: ['n1', 'n2'],
    leaseTtlMs: 3000,
    deadlineMs: 30_000,
    requestTimeoutMs: 2000,
    segments: [
      ['s1-seg', 's1'],
      ['s2-seg', 's2'],
    ],
    ...options,
  });
  const primary = await started.fleet.primary(60_000);
  const standby = started.fleet.nodes.find((n) => n !== primary)!;
  await standby.waitForStatus((s) => s.role === 'standby', 60_000);
  return { ...started, primary, standby };
}

/** Each node's id, role, applied seq and state digest, once it reached the primary's seq. */
export async function clusterStates(fleet: NodeFleet, primary: NodeHandle): Promise<string[]> {
  const seq = (await primary.status()).appliedSeq;
  const states = [];
  for (const node of fleet.nodes) {
    const s = await node.waitForStatus((st) => st.appliedSeq >= seq, 30_000, true);
    states.push(`${node.id} ${s.role} ${s.appliedSeq} ${s.digest}`);
  }
  return states;
}

/**
 * The one-node cluster of the export and replay tests (lease TTL 2 s, requests of 1 s, a 30 s
 * deadline), with what `options` adds (segments, their size, node flags).
 */
export function startOneNode(
  cleanups: Array<() => Promise<void>>,
  cluster: string,
  options: Partial<E2eClusterOptions> & Pick<E2eClusterOptions, 'segments'>,
): Promise<E2eCluster> {
  return startE2eCluster(cleanups, {
    cluster,
    nodes: ['n1'],
    leaseTtlMs: 2000,
    deadlineMs: 30_000,
    requestTimeoutMs: 1000,
    ...options,
  });
}
