/**
 * One group's member in a node process: its connections, elector, runtime, inspection and
 * metrics ({@link startMember}), and the {@link HostedGroup} the process's HTTP server asks it
 * through ({@link hosted}).
 */
import type { Logger } from 'pino';
import { createEtcdElector } from '../adapters/etcd/etcdElector.ts';
import {
  createNatsAdminClientTransport,
  createNatsAdminServerTransport,
  maxAdminReplyBytes,
} from '../adapters/nats/natsAdminTransport.ts';
import { createNatsApiServerTransport } from '../adapters/nats/natsApiTransport.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { groupCluster } from '../api/subjects.ts';
import type { NodeConfig } from '../config/config.ts';
import { etcdConnectionOptions } from '../config/credentials.ts';
import { rankCampaignDelay } from '../domain/model/groupPreference.ts';
import { logNatsConnection } from './natsConnectionLog.ts';
import { FlightRecorder } from '../observe/flightRecorder.ts';
import { INSPECT_EVENTS_PATH, inspectEventsRoute } from './inspectRoute.ts';
import { NodeInspection } from '../observe/nodeInspection.ts';
import type { NodeInspector } from './wsInspector.ts';
import { NodeMetrics } from '../observe/metrics.ts';
import { EventLoopDelay } from '../observe/eventLoopDelay.ts';
import { metadataNodeDomain } from '../node/metadataDomain.ts';
import { NodeRuntime } from '../node/nodeRuntime.ts';
import { CHECKPOINT_PATH, checkpointRoute } from './checkpointRoute.ts';
import { testHookRoutes } from './testHooks.ts';
import type { Waiting } from '../node/waitingFor.ts';
import { probePeerOverHttp, SWITCHOVER_PATH, switchoverRoute } from './switchoverRoute.ts';
import { clusterKeyCheck, etcdEndpoints } from './clusterRecords.ts';
import { connectDependencies } from './connections.ts';
import type { HostedGroup } from './groupRequests.ts';
import { keepPreferredPrimary } from './groupRebalance.ts';
import { nodeRequests, readiness, type NodeRequests } from './nodeRequests.ts';

/** One group's member hosted by this process: its runtime and what it answers with. */
export interface StartedMember {
  readonly group: number;
  readonly cluster: string;
  readonly runtime: NodeRuntime;
  readonly requests: NodeRequests;
  stop(): Promise<void>;
}

/** What every member of a process shares. */
export interface MemberShared {
  readonly groups: number;
  readonly waiting: Waiting;
  readonly log: Logger;
  readonly httpAddress: string;
  readonly inspector: Pick<NodeInspector, 'send'> | undefined;
}

/**
 * Starts the member of `group`: its own connections (NATS, the OpLog, the checkpoint store, the
 * elector's etcd), its own runtime running as the cluster `groupCluster(cluster, group, groups)`
 * and its own inspection and metrics. A cluster of one group has one member, named as the
 * cluster: exactly a node as before groups.
 */
export async function startMember(
  base: NodeConfig,
  group: number,
  shared: MemberShared,
): Promise<StartedMember> {
  const { groups, waiting, httpAddress, inspector } = shared;
  const single = groups === 1;
  const config: NodeConfig = { ...base, cluster: groupCluster(base.cluster, group, groups) };
  const log = single ? shared.log : shared.log.child({ group });
  const { nc, opLog, checkpoints } = await connectDependencies(
    config,
    waiting,
    log,
    group === 0 ? base : undefined,
  );
  const stopNatsLog = logNatsConnection(nc, log);
  const metrics = new NodeMetrics(new EventLoopDelay());
  // Each member its own machine actor and inspector id: `n1` for one group, `n1/g2` for more.
  const inspectName = single ? config.id : `${config.id}/g${group}`;
  const inspection = new NodeInspection({ nodeId: inspectName, now: () => Date.now() });
  if (inspector !== undefined) inspection.subscribe((record) => inspector.send(record));
  const recorder =
    config.record === undefined
      ? undefined
      : new FlightRecorder(single ? config.record : `${config.record}.g${group}`, {
          maxBytes: config.recordMaxBytes,
          header: () => inspection.current(),
        });
  if (recorder !== undefined) inspection.subscribe((record) => recorder.write(record));
  const elector = createEtcdElector({
    client: etcdConnectionOptions(config, config.etcd),
    cluster: config.cluster,
    nodeId: config.id,
    ttlMs: config.leaseTtl,
    clock: systemClock,
  });
  const keyRecord = clusterKeyCheck(config);
  const eviction = { highWater: config.evictionHighWater, lowWater: config.evictionLowWater };
  const runtime = new NodeRuntime({
    nodeId: config.id,
    // A member of one group of several refuses keys of the other groups (a client whose
    // `groups` is not the cluster's would otherwise put them in a group that does not own them).
    ...(single ? {} : { domain: metadataNodeDomain(eviction, { group: { group, groups } }) }),
    ...(single ? {} : { inspectName }),
    ...(keyRecord === undefined ? {} : { clusterKey: keyRecord.check }),
    coordinatorName: `etcd at ${etcdEndpoints(config)}`,
    address: httpAddress,
    opLog,
    elector,
    apiServer: createNatsApiServerTransport({ nc, cluster: config.cluster }),
    admin: {
      server: createNatsAdminServerTransport({ nc, cluster: config.cluster }),
      client: createNatsAdminClientTransport({ nc, cluster: config.cluster }),
      maxReplyBytes: maxAdminReplyBytes(nc),
    },
    checkpoints,
    clock: systemClock,
    logger: log,
    probePeer: (member) => probePeerOverHttp(member, undefined, single ? undefined : group),
    metrics,
    inspect: inspection.inspect,
    config: {
      leaseTtlMs: config.leaseTtl,
      maxLagForPromotion: config.maxLagForPromotion,
      campaignBaseDelayMs: config.campaignBaseDelay,
      campaignMaxDelayMs: config.campaignMaxDelay,
      // Groups spread their primaries: each prefers another process (rendezvous hashing). A
      // member waits a step per place behind the preferred live one: TTL / 8 (at most the
      // longest campaign delay), so a preferred member that is slow costs the group little, and
      // one that lost anyway gets its group back by switchover (groupRebalance.ts).
      ...(single
        ? {}
        : {
            campaignPreferenceMs: (memberIds: readonly string[]) =>
              rankCampaignDelay(
                group,
                groups,
                config.id,
                memberIds,
                Math.min(config.campaignMaxDelay, config.leaseTtl / 8),
              ),
          }),
      handoverTimeoutMs: config.handoverTimeout,
      eviction,
      verifyIntervalMs: config.verifyInterval,
      verifyFraction: config.verifyFraction,
      maxSyncGap: config.maxSyncGap,
      maxMismatches: config.maxMismatches,
      checkpointIntervalEntries: config.checkpointIntervalEntries,
      checkpointIntervalMs: config.checkpointInterval,
      checkpointKeep: config.checkpointKeep,
    },
  });
  const requests = nodeRequests(runtime, {
    maxLagForPromotion: config.maxLagForPromotion,
    metrics,
    routes: {
      [SWITCHOVER_PATH]: switchoverRoute(runtime),
      [CHECKPOINT_PATH]: checkpointRoute(runtime),
      [INSPECT_EVENTS_PATH]: inspectEventsRoute(inspection),
      ...testHookRoutes(runtime, log),
    },
  });
  const stopRebalance = single
    ? () => undefined
    : keepPreferredPrimary({ group, groups, nodeId: config.id, runtime, elector, log });
  const stop = async (): Promise<void> => {
    stopRebalance();
    await runtime.stop();
    requests.close();
    keyRecord?.close();
    await checkpoints.close();
    await opLog.close();
    stopNatsLog();
    await nc.drain().catch(() => nc.close());
    inspection.flush();
    recorder?.close();
  };
  return { group, cluster: config.cluster, runtime, requests, stop };
}

/** A member as the process's HTTP server sees it (hosted in this thread). */
export function hosted(member: StartedMember, maxLagForPromotion: number): HostedGroup {
  const { runtime, requests } = member;
  return {
    group: member.group,
    cluster: member.cluster,
    summary: () => {
      const status = runtime.status();
      const ready = readiness(runtime, maxLagForPromotion);
      return Promise.resolve({
        group: member.group,
        cluster: member.cluster,
        role: status.role,
        epoch: status.epoch,
        appliedSeq: status.appliedSeq,
        logLastSeq: status.logLastSeq,
        ready: ready.ready,
        ...(ready.reason === undefined ? {} : { reason: ready.reason }),
      });
    },
    families: () => Promise.resolve(requests.families()),
    handle: requests.handle,
    close: () => requests.close(),
  };
}
