// The three-node cluster of the end-to-end tests: node processes over one real etcd and one
// real nats-server, a client, and storage segments mounted; each started part registers its
// own cleanup.
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
  readonly leaseTtlMs: number;
  /** More `understudy node` flags for every node. */
  readonly extraArgs?: readonly string[];
  /** The client's overall deadline per call (ms). */
  readonly deadlineMs: number;
  /** The client's longest backoff between attempts (ms). */
  readonly maxBackoffMs: number;
  /** More environment variables for one node's process (see `FleetOptions.nodeEnv`). */
  readonly nodeEnv?: FleetOptions['nodeEnv'];
  /** The segments to mount: [segment id, storage node]. */
  readonly segments: readonly (readonly [string, string])[];
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
  const fleet = await NodeFleet.start(['n1', 'n2', 'n3'], {
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
    requestTimeoutMs: 500,
    deadlineMs: options.deadlineMs,
    backoff: { initialMs: 10, maxMs: options.maxBackoffMs },
  });
  cleanups.push(() => client.close());
  for (const [segment, node] of options.segments) {
    await client.mountSegment(segment, node, 1 << 30);
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
