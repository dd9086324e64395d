import { pino, type Logger } from 'pino';
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
import { etcdConnectionOptions, redact } from '../config/credentials.ts';
import { rankCampaignDelay } from '../domain/model/groupPreference.ts';
import { NodeHttpServer } from './httpServer.ts';
import { logNatsConnection } from './natsConnectionLog.ts';
import { FlightRecorder } from '../observe/flightRecorder.ts';
import { INSPECT_EVENTS_PATH, inspectEventsRoute } from './inspectRoute.ts';
import { NodeInspection } from '../observe/nodeInspection.ts';
import { createNodeInspector, type NodeInspector } from './wsInspector.ts';
import { NodeMetrics } from '../observe/metrics.ts';
import { EventLoopDelay } from '../observe/eventLoopDelay.ts';
import { metadataNodeDomain } from '../node/metadataDomain.ts';
import { NodeRuntime } from '../node/nodeRuntime.ts';
import { CHECKPOINT_PATH, checkpointRoute } from './checkpointRoute.ts';
import { packageVersion } from './packageInfo.ts';
import { testHookRoutes } from './testHooks.ts';
import { Waiting } from '../node/waitingFor.ts';
import { probePeerOverHttp, SWITCHOVER_PATH, switchoverRoute } from './switchoverRoute.ts';
import { clusterKeyCheck, etcdEndpoints } from './clusterRecords.ts';
import { connectDependencies } from './connections.ts';
import { groupRequests, type HostedGroup } from './groupRequests.ts';
import { keepPreferredPrimary } from './groupRebalance.ts';
import { nodeRequests, readiness, type NodeRequests } from './nodeRequests.ts';

export { refusedSettings } from './connections.ts';

/**
 * A running node process: a member of every group of the cluster (one runtime each), their
 * connections and the one HTTP server.
 */
export interface RunningNode {
  /** The runtime of group 0: the node's only one in a cluster of one group. */
  readonly runtime: NodeRuntime;
  /** One runtime per group, in group order. */
  readonly runtimes: readonly NodeRuntime[];
  readonly httpAddress: string;
  /** Stops the node gracefully (a primary hands over) and closes everything. */
  stop(): Promise<void>;
}

/** One group's member hosted by this process: its runtime and what it answers with. */
interface StartedMember {
  readonly group: number;
  readonly cluster: string;
  readonly runtime: NodeRuntime;
  readonly requests: NodeRequests;
  stop(): Promise<void>;
}

/** What every member of a process shares. */
interface MemberShared {
  readonly groups: number;
  readonly waiting: Waiting;
  readonly log: Logger;
  readonly httpAddress: string;
  readonly inspector: NodeInspector | undefined;
}

/**
 * Starts the member of `group`: its own connections (NATS, the OpLog, the checkpoint store, the
 * elector's etcd), its own runtime running as the cluster `groupCluster(cluster, group, groups)`
 * and its own inspection and metrics. A cluster of one group has one member, named as the
 * cluster: exactly a node as before groups.
 */
async function startMember(
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
function hosted(member: StartedMember, maxLagForPromotion: number): HostedGroup {
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

/**
 * Starts the member of group 0 (it checks the cluster's group count before opening anything),
 * then every other member at once; when one cannot start, stops those that did and rejects with
 * the first failure.
 */
async function startMembers(config: NodeConfig, shared: MemberShared): Promise<StartedMember[]> {
  const first = await startMember(config, 0, shared);
  const started = await Promise.allSettled(
    Array.from({ length: shared.groups - 1 }, (_, g) => startMember(config, g + 1, shared)),
  );
  const failed = started.find((r) => r.status === 'rejected');
  const members = [first, ...started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
  if (failed === undefined) return members;
  await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
  throw failed.reason;
}

/**
 * Starts a node from its configuration: serves HTTP (`/status` says what it waits for while it
 * starts), then starts a member of every group (connects NATS, waits for etcd, checks the
 * cluster's group count with the first, waits for the OpLog stream, starts the machine). Each dependency is retried
 * with a warning naming its address (see {@link Waiting}); a refused login is not retried. The
 * members run in this thread, behind {@link HostedGroup} (the interface a worker-thread host
 * would answer too).
 */
export async function startNode(config: NodeConfig, logger: Logger = pino()): Promise<RunningNode> {
  const log = logger.child({ node: config.id });
  const waiting = new Waiting();
  const http = await NodeHttpServer.listen(config.http);
  const httpAddress = config.advertise ?? http.url;
  if (config.advertise === undefined && /^http:\/\/(0\.0\.0\.0|\[::\]):/.test(http.url)) {
    log.warn(
      { event: 'noAdvertise', http: http.url },
      'the HTTP server listens on every interface: set --advertise to the URL other nodes and `understudy status` reach it at',
    );
  }
  http.serveStarting(config.id, () => waiting.current);
  // The machines' inspection records of every member go to one --inspect connection.
  const inspector =
    config.inspect === undefined ? undefined : createNodeInspector(config.inspect, log);
  const shared = { groups: config.groups, waiting, log, httpAddress, inspector };
  const members = await startMembers(config, shared).catch(async (err: unknown) => {
    inspector?.stop();
    await http.close();
    throw err;
  });
  const [first] = members;
  if (first === undefined) throw new Error('a node hosts at least one group');
  if (members.length === 1) http.serveRequests(first.requests);
  else {
    http.serveRequests(
      groupRequests(
        config.id,
        config.cluster,
        members.map((m) => hosted(m, config.maxLagForPromotion)),
      ),
    );
  }
  log.info(
    { event: 'started', version: packageVersion(), http: httpAddress, config: redact(config) },
    'node started',
  );
  for (const member of members) member.runtime.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // Every member at once: each primary hands over its group while the others do theirs.
      await Promise.all(members.map((m) => m.stop()));
      await http.close();
      inspector?.stop();
      log.info({ event: 'stopped' }, 'node stopped');
    })());
  return { runtime: first.runtime, runtimes: members.map((m) => m.runtime), httpAddress, stop };
}
