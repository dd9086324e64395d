// The campaign's preference hook (a node hosting one group of several lets the group's preferred
// node campaign first): the campaign waits what the hook says for the live members, not at all
// when a switchover named this node, and stops waiting when the campaign is cancelled.
import { describe, expect, it } from 'vitest';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { campaign } from '../../src/node/actors/promote.ts';
import type { NodeMachine } from '../../src/node/nodeContext.ts';

const TTL = 2000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function setup(handoverTo?: string) {
  const clock = new SimClock(1_000_000);
  const coord = new MemoryCoordinator(clock);
  // n2 is a live member: the hook is asked with its id.
  const other = createMemoryElector(coord, { nodeId: 'n2', ttlMs: TTL, clock });
  await other.start();
  const publishing = other.publishMember({
    nodeId: 'n2',
    role: 'standby',
    epoch: 0,
    appliedSeq: 0,
    address: 'sim://n2',
    updatedAt: 0,
  });
  await clock.advanceAsync(0);
  await publishing;
  const elector = createMemoryElector(coord, { nodeId: 'n1', ttlMs: TTL, clock });
  const asked: (readonly string[])[] = [];
  const machine = { context: () => ({ handoverTo }) } as unknown as NodeMachine;
  const ctx = {
    elector,
    logger: quiet,
    nodeId: 'n1',
    address: 'sim://n1',
    clock,
    machine,
    config: {
      campaignPreferenceMs: (ids: readonly string[]) => {
        asked.push(ids);
        return 500;
      },
    },
  };
  const controller = new AbortController();
  let settled = false;
  const result = campaign({ signal: controller.signal, ctx }).finally(() => (settled = true));
  return { clock, asked, result, controller, isSettled: () => settled };
}

describe('the campaign preference hook', () => {
  it('waits what the hook says for the live members before campaigning', async () => {
    const { clock, asked, result, isSettled } = await setup();
    await clock.advanceAsync(499);
    expect(isSettled()).toBe(false);
    expect(asked).toEqual([['n2']]);
    await clock.advanceAsync(1);
    await clock.advanceAsync(0);
    expect(await result).toMatchObject({ won: true });
  });

  it('does not wait when a switchover named this node', async () => {
    const { clock, asked, result } = await setup('n1');
    await clock.advanceAsync(0);
    expect(await result).toMatchObject({ won: true });
    expect(asked).toEqual([]);
  });

  it('stops waiting when the campaign is cancelled', async () => {
    const { clock, result, controller, isSettled } = await setup();
    await clock.advanceAsync(100);
    expect(isSettled()).toBe(false);
    controller.abort();
    await clock.advanceAsync(0);
    await clock.advanceAsync(0);
    await result;
    expect(isSettled()).toBe(true);
  });
});
