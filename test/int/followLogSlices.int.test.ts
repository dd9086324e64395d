// A standby catching up a backlog folds it in slices: between slices its event loop runs (timers,
// keep-alives, answers). Found by the write bench's lag focus with the new GC figure: a standby's
// loop stalled 200-520 ms with no checkpoint and GC pauses under 45 ms; its profile showed the
// follower folding a buffered run of messages in one chain of microtasks.
// On the real clock (a simulated one never advances while code runs, so it never slices).
import { describe, expect, it } from 'vitest';
import { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { systemClock } from '../../src/adapters/systemClock.ts';
import { createClient } from '../../src/client/nats.ts';
import { followLog } from '../../src/node/actors/followLog.ts';
import { NodeRuntime } from '../../src/node/nodeRuntime.ts';
import { ElectionChecks } from '../../src/node/state/electionChecks.ts';
import { METADATA_DOMAIN, metadataStore } from '../fixtures/metadataNode.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const CLUSTER = 'slices';
const OBJECTS = 20_000;

describe('followLog on the real clock', () => {
  it('folds a backlog in slices, letting the event loop run between them', async () => {
    const clock = systemClock;
    const coord = new MemoryCoordinator(clock);
    const store = new MemoryLogStore();
    const bus = new MemoryApiBus({ clock });
    const primary = new NodeRuntime({
      nodeId: 'n1',
      address: 'sim://n1',
      opLog: createMemoryOpLog(store, { nodeId: 'n1', clock, timeoutMs: 5000 }),
      elector: createMemoryElector(coord, { nodeId: 'n1', ttlMs: 5000, clock }),
      apiServer: bus.serverTransport(CLUSTER),
      clock,
      logger: quiet,
      config: { leaseTtlMs: 5000 },
    }).start();
    const client = await createClient({
      cluster: CLUSTER,
      transport: bus.clientTransport(CLUSTER),
      clock,
      requestTimeoutMs: 5000,
      deadlineMs: 30_000,
    });
    const observer = createMemoryElector(coord, { nodeId: 'n2', ttlMs: 5000, clock });
    let stopFollowing: (() => void) | undefined;
    try {
      await client.mountSegment('seg', 'storage', 2 ** 40);
      for (let i = 0; i < OBJECTS; i += 100) {
        const items = Array.from({ length: 100 }, (_, j) => ({
          key: `k${i + j}`,
          size: 1024,
          replicaNum: 1,
        }));
        for (const result of await client.putStartBatch(items)) expect(result.ok).toBe(true);
      }
      const target = primary.store.appliedSeq;
      expect(target).toBeGreaterThan(OBJECTS);

      // A standby from entry 1: the whole history is its backlog.
      const standby = metadataStore();
      const ctx = {
        opLog: createMemoryOpLog(store, { nodeId: 'n2', clock, timeoutMs: 5000 }),
        clock,
        logger: quiet,
        store: standby,
        checks: new ElectionChecks(
          { elector: observer, clock, logger: quiet },
          100,
          METADATA_DOMAIN.log,
        ),
        keyWatch: {
          passedOver: () => undefined,
          beforePromotion: () => Promise.resolve(),
          stop: () => undefined,
        },
        config: { progressIntervalMs: 200, retryDelayMs: 100, followStallMs: 60_000 },
      };
      // Turns of the event loop's check phase while the backlog is folded.
      let turns = 0;
      let counting = true;
      const turn = (): void => {
        if (!counting) return;
        turns++;
        setImmediate(turn);
      };
      setImmediate(turn);
      const startedAt = performance.now();
      stopFollowing = followLog({ ctx, sendBack: () => undefined });
      while (standby.appliedSeq < target) await new Promise((r) => setTimeout(r, 5));
      counting = false;
      const foldMs = performance.now() - startedAt;
      console.log(
        `followLog folded ${target} entries in ${Math.round(foldMs)} ms; the loop turned ${turns} times`,
      );
      // Unsliced, the loop turned about once (the backlog was one chain of microtasks). Sliced
      // every 10 ms of folding, it turns at least once per slice.
      expect(turns).toBeGreaterThanOrEqual(Math.max(1, Math.min(20, Math.floor(foldMs / 20))));
    } finally {
      stopFollowing?.();
      await client.close();
      await primary.stop();
    }
  }, 120_000);
});
