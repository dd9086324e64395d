// Three NodeRuntimes over the memory adapters on one simulated clock, for the simple runtime
// scenarios (the fault-schedule simulation has its own world in simWorld.ts).
import { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import {
  createMemoryOpLog,
  type MemoryOpLogOptions,
} from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import type { Elector } from '../../src/ports/elector.ts';
import { NodeRuntime, type NodeRuntimeDeps } from '../../src/node/nodeRuntime.ts';

export const SIM_CLUSTER = 'sim';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

export interface MemoryCluster {
  readonly clock: SimClock;
  readonly coord: MemoryCoordinator;
  readonly store: MemoryLogStore;
  readonly bus: MemoryApiBus;
  readonly nodes: NodeRuntime[];
  readonly electors: ReadonlyMap<string, Elector>;
  /** Advances simulated time in small steps, letting every microtask and I/O callback run. */
  run(ms: number, step?: number): Promise<void>;
  /** Runs the clock until `promise` settles. */
  settle<T>(promise: Promise<T>, limitMs?: number): Promise<T>;
  /** The running nodes that are primary. */
  primaries(): NodeRuntime[];
  /** A client over the bus on the simulated clock. */
  client(): Promise<UnderstudyClient>;
}

export interface MemoryClusterOptions {
  /** How a handing-over primary asks a peer for its role and seq (default: its member record). */
  readonly probePeer?: NodeRuntimeDeps['probePeer'];
  /** How the nodes' OpLogs time appends (default: a 1000 ms ack timeout, no read-back). */
  readonly opLog?: Pick<MemoryOpLogOptions, 'timeoutMs' | 'resolveTimeoutMs' | 'latencyMs'>;
}

export function memoryCluster(ttlMs: number, options: MemoryClusterOptions = {}): MemoryCluster {
  const clock = new SimClock(1_000_000);
  const coord = new MemoryCoordinator(clock);
  const store = new MemoryLogStore();
  const bus = new MemoryApiBus({ clock });
  const electors = new Map<string, Elector>();
  const nodes = ['n1', 'n2', 'n3'].map((nodeId) => {
    const elector = createMemoryElector(coord, { nodeId, ttlMs, clock });
    electors.set(nodeId, elector);
    return new NodeRuntime({
      nodeId,
      address: `sim://${nodeId}`,
      opLog: createMemoryOpLog(store, { nodeId, clock, timeoutMs: 1000, ...options.opLog }),
      elector,
      apiServer: bus.serverTransport(SIM_CLUSTER),
      clock,
      logger: quiet,
      ...(options.probePeer === undefined ? {} : { probePeer: options.probePeer }),
      config: { leaseTtlMs: ttlMs },
    }).start();
  });
  const run = async (ms: number, step = 10): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(step);
      await new Promise((r) => setImmediate(r));
    }
  };
  return {
    clock,
    coord,
    store,
    bus,
    nodes,
    electors,
    run,
    async settle<T>(promise: Promise<T>, limitMs = 60_000): Promise<T> {
      let done = false;
      const watched = promise.finally(() => {
        done = true;
      });
      for (let t = 0; !done && t < limitMs; t += 10) await run(10);
      return watched;
    },
    primaries: () =>
      nodes.filter((n) => n.role === 'primary' && n.actor.getSnapshot().status === 'active'),
    client: () =>
      createClient({
        cluster: SIM_CLUSTER,
        transport: bus.clientTransport(SIM_CLUSTER),
        clock,
        requestTimeoutMs: 500,
        deadlineMs: 30_000,
        random: () => 0.5,
      }),
  };
}
