// The node runs any domain: a key-value register (test/fixtures/kvRegister.ts) through the same
// NodeRuntime, machine, write pipeline, elections and fences as the metadata, with primaries
// crashed under load and replies lost, and the whole history checked for linearizability.
import { describe, expect, it } from 'vitest';
import { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import type { Elector } from '../../src/ports/elector.ts';
import { NodeRuntime } from '../../src/node/nodeRuntime.ts';
import type { NodeDomain } from '../../src/node/nodeDomain.ts';
import {
  KvClient,
  type KvAnswer,
  type KvCommand,
  type KvEvent,
  kvModel,
  kvRegisterDomain,
  type KvInput,
  type KvOutput,
  type KvState,
} from '../fixtures/kvRegister.ts';
import {
  checkPartitions,
  type Operation,
  type PartitionFailure,
} from '../harness/linearizability.ts';
import { mulberry32 as prng } from '../../src/tools/localCluster/seededRandom.ts';

const TTL = 2000;
const CLUSTER = 'kv';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function kvCluster(
  seed: number,
  domain: NodeDomain<KvState, KvCommand, KvEvent, KvAnswer> = kvRegisterDomain,
) {
  const random = prng(seed);
  const clock = new SimClock(1_000_000);
  const coord = new MemoryCoordinator(clock);
  const log = new MemoryLogStore();
  // One reply in eight is lost after the request was served: the client retries with the same
  // request number, and the session table must answer it without applying it twice.
  const bus = new MemoryApiBus({
    clock,
    replyFate: () => (random() < 0.125 ? { kind: 'drop' } : { kind: 'deliver' }),
  });
  const nodes = new Map<string, { runtime: NodeRuntime<KvState>; elector: Elector }>();
  const start = (nodeId: string): void => {
    const elector = createMemoryElector(coord, { nodeId, ttlMs: TTL, clock });
    const runtime = new NodeRuntime<KvState>({
      nodeId,
      address: `sim://${nodeId}`,
      opLog: createMemoryOpLog(log, { nodeId, clock, timeoutMs: 1000 }),
      elector,
      apiServer: bus.serverTransport(CLUSTER),
      clock,
      logger: quiet,
      domain,
      config: { leaseTtlMs: TTL },
    }).start();
    nodes.set(nodeId, { runtime, elector });
  };
  /** Kills `nodeId`: its actor stops, its keep-alives stop, nothing is revoked or handed over. */
  const crash = async (nodeId: string): Promise<void> => {
    const node = nodes.get(nodeId)!;
    node.runtime.actor.stop();
    await node.elector.close();
    nodes.delete(nodeId);
  };
  const primary = (): string | undefined =>
    [...nodes].find(
      ([, n]) => n.runtime.role === 'primary' && n.runtime.actor.getSnapshot().status === 'active',
    )?.[0];
  const run = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      await new Promise((r) => setImmediate(r));
    }
  };
  return { random, clock, bus, nodes, start, crash, primary, run };
}

describe('a second domain through the same node code', () => {
  it('a key-value register stays linearizable through three primary crashes and lost replies', async () => {
    const { failures, states } = await crashesUnderLoad(kvRegisterDomain);
    expect(failures).toEqual([]);
    // Every node folded the same log into the same register.
    expect(new Set(states.map((s) => s.appliedSeq)).size).toBe(1);
    expect(new Set(states.map((s) => JSON.stringify([...s.values].sort()))).size).toBe(1);
  }, 120_000);

  it('the same run catches a register whose retries act twice (no session table)', async () => {
    const { failures } = await crashesUnderLoad({
      ...kvRegisterDomain,
      writes: { ...kvRegisterDomain.writes, requestStatus: () => ({ kind: 'new' }) },
    });
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f.verdict === 'illegal')).toBe(true);
  }, 120_000);
});

/**
 * Three nodes of `domain`, three clients doing reads, puts and read-modify-write
 * compare-and-sets on three keys, the primary crashed three times (and restarted empty); the
 * failing partitions of the history and the live nodes' states at the end.
 */
async function crashesUnderLoad(
  domain: NodeDomain<KvState, KvCommand, KvEvent, KvAnswer>,
): Promise<{ failures: PartitionFailure<KvInput, KvOutput>[]; states: KvState[] }> {
  const c = kvCluster(20261206, domain);
  for (const id of ['n1', 'n2', 'n3']) c.start(id);
  await c.run(3000);
  expect(c.primary()).toBeDefined();

  const history: Operation<KvInput, KvOutput>[] = [];
  let stop = false;
  const keys = ['a', 'b', 'c'];
  const clientLoop = async (no: number): Promise<void> => {
    const session = no.toString(16).padStart(32, '0');
    const client = new KvClient(c.bus.clientTransport(CLUSTER), c.clock, session);
    // Read-modify-write: a compare-and-set expects the value this client saw last, so most
    // succeed, and one applied twice (a lost reply retried without its session) is answered
    // CONFLICT after changing the value: a history no order explains.
    const seen = new Map<string, string | null>();
    for (let i = 0; !stop; i++) {
      const key = keys[Math.floor(c.random() * keys.length)]!;
      const roll = c.random();
      const value = `c${no}.${i}`;
      const input: KvInput =
        roll < 0.25
          ? { type: 'get', key }
          : roll < 0.4
            ? { type: 'put', key, value }
            : { type: 'cas', key, expected: seen.get(key) ?? null, value };
      const call = c.clock.now();
      let output: KvOutput | undefined;
      try {
        output = input.type === 'get' ? await client.get(key) : await client.write(input);
      } catch {
        output = undefined; // no answer: its outcome is unknown
      }
      if (output?.ok === true)
        seen.set(key, input.type === 'get' ? (output.value ?? null) : input.value);
      history.push({
        client: no,
        input,
        call,
        return: output === undefined ? Infinity : c.clock.now(),
        output,
      });
      await new Promise<void>((r) => c.clock.setTimeout(r, 20));
    }
  };
  const clients = [0, 1, 2].map((no) => clientLoop(no));

  const primaries = new Set<string>();
  for (let crash = 0; crash < 3; crash++) {
    await c.run(1500);
    const victim = c.primary();
    expect(victim).toBeDefined();
    primaries.add(victim!);
    await c.crash(victim!);
    await c.run(TTL + 1500);
    c.start(victim!); // the crashed node comes back empty-handed and catches up from the log
  }
  await c.run(2000);
  stop = true;
  await c.run(25_000);
  await Promise.all(clients);

  // Crashes hit the primary of the moment: at least two different nodes led.
  expect(primaries.size).toBeGreaterThanOrEqual(2);
  const writesDone = history.filter((op) => op.input.type !== 'get' && op.output?.ok === true);
  const conflicts = history.filter((op) => op.output?.ok === false);
  expect(writesDone.length).toBeGreaterThan(50);
  expect(conflicts.every((op) => op.output?.ok === false && op.output.code === 'CONFLICT')).toBe(
    true,
  );

  const failures = checkPartitions(
    kvModel,
    keys.map((key) => ({ name: key, ops: history.filter((op) => op.input.key === key) })),
  );
  await c.run(2000);
  return { failures, states: [...c.nodes.values()].map(({ runtime }) => runtime.store.state) };
}
