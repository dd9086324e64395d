import { pino, type Logger } from 'pino';
import type { NodeConfig } from '../config/config.ts';
import { redact } from '../config/credentials.ts';
import { NodeHttpServer } from './httpServer.ts';
import { createNodeInspector } from './wsInspector.ts';
import type { NodeRuntime } from '../node/nodeRuntime.ts';
import { packageVersion } from './packageInfo.ts';
import { Waiting } from '../node/waitingFor.ts';
import { groupRequests } from './groupRequests.ts';
import { hosted, startMember, type MemberShared, type StartedMember } from './groupMember.ts';

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
