import type { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import type { MemoryCheckpointStore } from '../../src/adapters/memory/memoryCheckpointStore.ts';
import type { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import type { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import type { ApiServerTransport } from '../../src/ports/apiTransport.ts';
import type { Clock } from '../../src/ports/clock.ts';
import type { Elector } from '../../src/ports/elector.ts';
import type { OpLog } from '../../src/ports/opLog.ts';
import { NodeRuntime, type RuntimeLogger } from '../../src/node/nodeRuntime.ts';
import { ackingAtSend, withoutLeaseDeadline, type Breakage } from './brokenVariants.ts';
import type { NodeSlot } from './nodeSlot.ts';
import { clusterKeyCheck, keyedOpLog } from './oplogKeys.ts';
import type { SimChecker } from './simChecker.ts';
import type { SimLogArchive } from './simLogArchive.ts';
import { SIM_CLUSTER, SIM_NODE_CONFIG, SIM_TTL_MS } from './simSettings.ts';
import { adminClientFor, incarnationServer } from './simTransports.ts';

/** What a node of the simulation is built from: the world's shared services. */
export interface NodeWorld {
  readonly breakage: Breakage;
  readonly coord: MemoryCoordinator;
  readonly store: MemoryLogStore;
  readonly log: SimLogArchive;
  readonly checkpoints: MemoryCheckpointStore;
  readonly bus: MemoryApiBus;
  readonly adminBus: MemoryApiBus;
  readonly checker: SimChecker;
  /** How many times the nodes logged each event. */
  readonly events: Map<string, number>;
}

/** Writes a line of the world's trace. */
export type TraceLine = (node: string, state: string, event: string) => void;

/**
 * Boots `slot`'s node in `world`: a {@link NodeRuntime} on the node's clock (or its wall clock,
 * broken variant (f)), over the memory elector and OpLog (with the broken variants the world
 * runs), keyed and archived as the checks read it, behind the node's API and admin transports,
 * logging into the world's trace; then starts it.
 */
export function bootNode(world: NodeWorld, trace: TraceLine, slot: NodeSlot): void {
  const { id } = slot;
  const clock = slot.clock;
  const incarnation = slot.incarnation;
  // Broken variant (f): every lease and deadline decision on the wall clock.
  const nodeClock: Clock =
    world.breakage === 'wallClockDeadline'
      ? {
          monotonicNow: () => clock.wallNow(),
          wallNow: () => clock.wallNow(),
          setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
        }
      : clock;
  let elector: Elector = createMemoryElector(world.coord, {
    nodeId: id,
    ttlMs: SIM_TTL_MS,
    clock: nodeClock,
  });
  if (world.breakage === 'noLeaseDeadline') elector = withoutLeaseDeadline(elector);
  let opLog: OpLog = createMemoryOpLog(world.store, {
    nodeId: id,
    clock: nodeClock,
    timeoutMs: 1000,
  });
  if (world.breakage === 'foldBeforeAck') opLog = ackingAtSend(opLog);
  opLog = keyedOpLog(
    world.log.archiving(opLog, nodeClock, slot.keyId),
    slot.keyId,
    world.log.entryKeys,
  );
  const logger = nodeLogger(world, trace, slot);
  const runtime = new NodeRuntime({
    nodeId: id,
    address: `sim://${id}`,
    opLog,
    elector,
    apiServer: apiServerFor(world, slot, incarnation),
    admin: {
      server: incarnationServer(world.adminBus, slot, incarnation, () => slot.natsCut),
      client: adminClientFor(world.adminBus, slot),
    },
    checkpoints: world.checkpoints,
    clusterKey: clusterKeyCheck(SIM_CLUSTER, slot.keyId, () => !slot.etcdCut && !slot.paused),
    clock: nodeClock,
    logger,
    config: SIM_NODE_CONFIG,
    inspect: slot.tape.inspect,
    ...(world.breakage === 'refusalsBeforeCommit'
      ? { brokenForTest: { refusalsBeforeCommit: true } }
      : {}),
  });
  let last = '';
  runtime.actor.subscribe({
    next: (snapshot) => {
      const value = JSON.stringify(snapshot.value);
      if (value !== last) {
        last = value;
        trace(id, runtime.role, `machine ${value}`);
      }
    },
    error: () => undefined,
  });
  slot.runtime = runtime;
  slot.elector = elector;
  runtime.start();
}

/** `slot`'s logger: each line goes to the trace, each event is counted in `world.events`. */
function nodeLogger(world: NodeWorld, trace: TraceLine, slot: NodeSlot): RuntimeLogger {
  const put = (level: string, fields: object, msg: string): void => {
    const event = (fields as { event?: unknown }).event;
    if (typeof event === 'string') world.events.set(event, (world.events.get(event) ?? 0) + 1);
    const extra = Object.entries(fields)
      .filter(([k]) => k !== 'event' && k !== 'state')
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    trace(slot.id, slot.runtime?.role ?? 'starting', `${level} ${msg} ${extra}`.trim());
  };
  return {
    info: (f, m) => put('info', f, m),
    warn: (f, m) => put('warn', f, m),
    error: (f, m) => put('error', f, m),
  };
}

/** Each node's API server: held while paused, and every answer recorded and checked. */
function apiServerFor(world: NodeWorld, slot: NodeSlot, incarnation: number): ApiServerTransport {
  return incarnationServer(
    world.bus,
    slot,
    incarnation,
    () => false,
    (op, body) => {
      const epoch = slot.runtime?.actor.getSnapshot().context.epoch ?? 0;
      const fenceAtStart = world.checker.currentFenceEpoch();
      return (reply) => world.checker.recordAnswer(slot, op, body, reply, epoch, fenceAtStart);
    },
  );
}
