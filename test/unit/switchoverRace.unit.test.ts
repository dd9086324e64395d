// A switchover whose node stops being primary while it waits for a standby: found by the
// failover simulation (random schedule, 2026-12-06): the node, fenced meanwhile, got
// `node.switchover`; the snapshot of that ignored event (not `handingOver`) rejected the
// handover's promise with the node's stale last fault ("handover failed: NotRetainedError ..."),
// which nobody awaited (an unhandled rejection), while the caller was told `notPrimary`.
import { describe, expect, it } from 'vitest';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { metadataStore } from '../fixtures/metadataNode.ts';
import { switchover, SwitchoverError } from '../../src/node/actors/switchover.ts';
import type { MemberRecord } from '../../src/ports/elector.ts';

type Listener = (snapshot: FakeSnapshot) => void;
interface FakeSnapshot {
  readonly value: string;
  readonly context: { readonly epoch: number; readonly lastFault: string };
  matches(state: { running: string }): boolean;
}

/** A machine that is primary until the switchover's wait ends, then fenced (it ignores the event). */
function fencedMeanwhile(): {
  machine: Parameters<typeof switchover>[0]['ctx']['machine'];
  fence: () => void;
} {
  const listeners = new Set<Listener>();
  let state = 'primary';
  const snapshot = (): FakeSnapshot => ({
    value: state,
    context: { epoch: 3, lastFault: 'NotRetainedError: entry 5 is no longer retained' },
    matches: (s) => s.running === state,
  });
  const actor = {
    getSnapshot: snapshot,
    subscribe: (listener: Listener) => {
      listeners.add(listener);
      return { unsubscribe: () => listeners.delete(listener) };
    },
  };
  const machine = {
    actor: () => actor,
    role: () => state,
    // xstate notifies observers of every event it processes, an ignored one too.
    requestHandover: () => {
      for (const listener of [...listeners]) listener(snapshot());
    },
  } as unknown as Parameters<typeof switchover>[0]['ctx']['machine'];
  return { machine, fence: () => (state = 'fenced') };
}

describe('switchover of a node that stops being primary meanwhile', () => {
  it('is refused as notPrimary and leaves no rejection unhandled', async () => {
    const clock = new SimClock(0);
    const { machine, fence } = fencedMeanwhile();
    const standby: MemberRecord = {
      nodeId: 'n2',
      role: 'standby',
      appliedSeq: 0,
      address: 'sim://n2',
      updatedAt: 0,
    } as MemberRecord;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const result = switchover({
        input: { target: undefined },
        ctx: {
          clock,
          nodeId: 'n1',
          store: metadataStore(),
          machine,
          probePeer: undefined,
          elector: {
            members: () => {
              fence(); // the node is fenced while it looks for a standby
              return Promise.resolve([standby]);
            },
          },
          config: { handoverTimeoutMs: 1000, maxLagForPromotion: 100 },
        } as unknown as Parameters<typeof switchover>[0]['ctx'],
      });
      await expect(result).rejects.toMatchObject({ reason: 'notPrimary' });
      await expect(result).rejects.toBeInstanceOf(SwitchoverError);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
