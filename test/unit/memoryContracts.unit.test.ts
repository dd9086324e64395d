import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { describeElectorContract } from '../contract/elector.contract.ts';
import { describeOpLogContract } from '../contract/opLog.contract.ts';

describeOpLogContract(
  'memory',
  () => {
    const store = new MemoryLogStore();
    return Promise.resolve({
      makeLog: () => Promise.resolve(createMemoryOpLog(store)),
      publishUndecodable: () => Promise.resolve(store.publishUndecodable()),
      publishOutsider: (entries) => Promise.resolve(store.publishOutsider(entries)),
      cleanup: () => Promise.resolve(),
    });
  },
  { trims: true, undecodable: true },
);

describeElectorContract('memory', () => {
  const clock = new SimClock(1_000_000);
  const coord = new MemoryCoordinator(clock);
  return Promise.resolve({
    makeElector: (nodeId: string, ttlMs: number) =>
      Promise.resolve(createMemoryElector(coord, { nodeId, ttlMs, clock })),
    advance: (ms: number) => clock.advanceAsync(ms),
    now: () => clock.now(),
    isolate: (nodeId: string) => {
      coord.partition(nodeId);
      return Promise.resolve();
    },
    cleanup: () => Promise.resolve(),
  });
});
