import { pino, type Logger } from 'pino';
import type { NodeConfig } from '../config/config.ts';
import { redact } from '../config/credentials.ts';
import { NodeHttpServer } from './httpServer.ts';
import { createNodeInspector, type NodeInspector } from './wsInspector.ts';
import type { NodeRuntime } from '../node/nodeRuntime.ts';
import { packageVersion } from './packageInfo.ts';
import { Waiting } from '../node/waitingFor.ts';
import { groupRequests } from './groupRequests.ts';
import type { RequestAnswerer } from './nodeRequests.ts';
import { groupCluster } from '../api/subjects.ts';
import { hosted, startMember, type MemberShared } from './groupMember.ts';
import { MemberThread } from './memberThread.ts';

export { refusedSettings } from './connections.ts';

/**
 * A running node process: a member of every group of the cluster (one runtime each), their
 * connections and the one HTTP server.
 */
export interface RunningNode {
  /**
   * The runtime of group 0: the node's only one in a cluster of one group. Undefined when the
   * members run in worker threads (`groupThreads: 'worker'`): their runtimes live there.
   */
  readonly runtime: NodeRuntime | undefined;
  /** One runtime per group, in group order; empty when the members run in worker threads. */
  readonly runtimes: readonly NodeRuntime[];
  readonly httpAddress: string;
  /**
   * Calls `listener` when a member's runtime stops itself with a refusal (another live process
   * runs with this id; the node's OpLog key is no longer the cluster's), in any thread.
   */
  onRefused(listener: (refusal: Error) => void): void;
  /** Stops the node gracefully (a primary hands over) and closes everything. */
  stop(): Promise<void>;
}

/**
 * Starts the member of group 0 (it checks the cluster's group count before opening anything),
 * then every other member at once; when one cannot start, stops those that did and rejects with
 * the first failure.
 */
async function startMembers<M extends { stop(): Promise<void> }>(
  groups: number,
  start: (group: number) => Promise<M>,
): Promise<M[]> {
  const first = await start(0);
  const started = await Promise.allSettled(
    Array.from({ length: groups - 1 }, (_, g) => start(g + 1)),
  );
  const failed = started.find((r) => r.status === 'rejected');
  const members = [first, ...started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
  if (failed === undefined) return members;
  await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
  throw failed.reason;
}

/** What a process's members run as: a runtime each in this thread, or a worker thread each. */
interface ProcessMembers {
  readonly runtimes: readonly NodeRuntime[];
  /** The process's answers over HTTP. */
  readonly requests: RequestAnswerer;
  start(): void;
  onRefused(listener: (refusal: Error) => void): void;
  stop(): Promise<void>;
}

/** Every member in this thread (`groupThreads: 'main'`, and any cluster of one group). */
async function membersInThisThread(
  config: NodeConfig,
  shared: MemberShared,
): Promise<ProcessMembers> {
  const members = await startMembers(config.groups, (g) => startMember(config, g, shared));
  const [first] = members;
  if (first === undefined) throw new Error('a node hosts at least one group');
  const requests =
    members.length === 1
      ? first.requests
      : groupRequests(
          config.id,
          config.cluster,
          members.map((m) => hosted(m, config.maxLagForPromotion)),
        );
  return {
    runtimes: members.map((m) => m.runtime),
    requests,
    start: () => members.forEach((m) => m.runtime.start()),
    onRefused: (listener) => {
      for (const { runtime } of members) {
        void runtime.whenStopped().then(() => {
          if (runtime.refusal !== undefined) listener(runtime.refusal);
        });
      }
    },
    stop: async () => {
      await Promise.all(members.map((m) => m.stop()));
    },
  };
}

/**
 * Every member in a worker thread of its own (`groupThreads: 'worker'`, more than one group):
 * their log lines go to `logger`'s destination, their inspection records to `inspector`; what
 * each waits for while it starts is reported to `waiting`.
 */
async function membersInWorkers(
  config: NodeConfig,
  logger: Logger,
  httpAddress: string,
  inspector: NodeInspector | undefined,
  waiting: (group: number, what: string | undefined) => void,
): Promise<ProcessMembers> {
  const destination = (logger as unknown as Record<symbol, { write(line: string): void }>)[
    pino.symbols.streamSym
  ];
  const refusalListeners: ((refusal: Error) => void)[] = [];
  const sinks = {
    log: (line: string) => destination?.write(line),
    inspect: inspector === undefined ? undefined : (record: object) => inspector.send(record),
    waiting,
    refused: (refusal: Error) => refusalListeners.forEach((listener) => listener(refusal)),
    // A fault nobody caught in a member's thread ends the process, as it would in this one.
    crashed: (err: unknown) =>
      setImmediate(() => {
        throw err;
      }),
  };
  const threads = await startMembers(config.groups, (g) =>
    MemberThread.start(
      config,
      g,
      groupCluster(config.cluster, g, config.groups),
      httpAddress,
      sinks,
    ),
  );
  return {
    runtimes: [],
    requests: groupRequests(config.id, config.cluster, threads),
    start: () => threads.forEach((t) => t.startRuntime()),
    onRefused: (listener) => refusalListeners.push(listener),
    stop: async () => {
      await Promise.all(threads.map((t) => t.stop()));
    },
  };
}

/**
 * Starts a node from its configuration: serves HTTP (`/status` says what it waits for while it
 * starts), then starts a member of every group (connects NATS, waits for etcd, checks the
 * cluster's group count with the first, waits for the OpLog stream, starts the machine). Each
 * dependency is retried with a warning naming its address (see {@link Waiting}); a refused login
 * is not retried. The members run in this thread, or (`groupThreads: 'worker'`, more than one
 * group) each in a worker thread of its own; the HTTP server asks them only through
 * {@link HostedGroup}.
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
  // What the members' threads wait for, by group (worker threads report theirs by message).
  const threadsWaiting = new Map<number, string>();
  http.serveStarting(config.id, () => waiting.current ?? threadsWaiting.values().next().value);
  // The machines' inspection records of every member go to one --inspect connection.
  const inspector =
    config.inspect === undefined ? undefined : createNodeInspector(config.inspect, log);
  const inWorkers = config.groups > 1 && config.groupThreads === 'worker';
  const members = await (
    inWorkers
      ? membersInWorkers(config, logger, httpAddress, inspector, (group, what) => {
          if (what === undefined) threadsWaiting.delete(group);
          else threadsWaiting.set(group, what);
        })
      : membersInThisThread(config, {
          groups: config.groups,
          waiting,
          log,
          httpAddress,
          inspector,
        })
  ).catch(async (err: unknown) => {
    inspector?.stop();
    await http.close();
    throw err;
  });
  http.serveRequests(members.requests);
  log.info(
    { event: 'started', version: packageVersion(), http: httpAddress, config: redact(config) },
    'node started',
  );
  members.start();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // Every member at once: each primary hands over its group while the others do theirs.
      await members.stop();
      await http.close();
      inspector?.stop();
      log.info({ event: 'stopped' }, 'node stopped');
    })());
  return {
    runtime: members.runtimes[0],
    runtimes: members.runtimes,
    httpAddress,
    onRefused: (listener) => members.onRefused(listener),
    stop,
  };
}
