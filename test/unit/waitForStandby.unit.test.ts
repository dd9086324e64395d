// How long a primary that hands over waits for a standby (waitForStandby.ts), on a simulated
// clock: the whole handover timeout while another node is registered, even one that is not
// caught up; ALONE_GIVE_UP_MS once nobody else is registered (found by the failover simulation:
// a primary alone in its cluster, whose clock ran at half speed, held its group unavailable for
// 6 s of real time; wrongKey.sim); and never less than the timeout because the member list
// cannot be read.
import { describe, expect, it } from 'vitest';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { ALONE_GIVE_UP_MS, waitForStandby } from '../../src/node/actors/waitForStandby.ts';
import type { MemberRecord } from '../../src/ports/elector.ts';

const TIMEOUT_MS = 3000;

const member = (nodeId: string, appliedSeq: number): MemberRecord => ({
  nodeId,
  role: 'standby',
  epoch: 0,
  appliedSeq,
  address: `sim://${nodeId}`,
  updatedAt: 0,
});

/** Runs the wait of n1 (at seq 100) against `members()` and says when it ended and how. */
async function waitWith(
  members: () => Promise<MemberRecord[]>,
  target?: string,
): Promise<{ ready: boolean; atMs: number }> {
  const clock = new SimClock(0);
  let outcome: { ready: boolean; atMs: number } | undefined;
  void waitForStandby({
    input: { target, seq: () => 100 },
    ctx: {
      clock,
      nodeId: 'n1',
      probePeer: undefined,
      elector: { members },
      config: { handoverTimeoutMs: TIMEOUT_MS, maxLagForPromotion: 10 },
    } as unknown as Parameters<typeof waitForStandby>[0]['ctx'],
  }).then((ready) => (outcome = { ready, atMs: clock.monotonicNow() }));
  for (let t = 0; t < TIMEOUT_MS + 1000 && outcome === undefined; t += 10) {
    await clock.advanceAsync(10);
  }
  if (outcome === undefined) throw new Error('the wait did not end');
  return outcome;
}

describe('a primary waiting for a standby to hand over to', () => {
  it('gives up after ALONE_GIVE_UP_MS when no other node is registered', async () => {
    const { ready, atMs } = await waitWith(() => Promise.resolve([member('n1', 100)]));
    expect(ready).toBe(false);
    expect(atMs).toBeGreaterThanOrEqual(ALONE_GIVE_UP_MS);
    expect(atMs).toBeLessThan(ALONE_GIVE_UP_MS + 100);
  });

  it('gives up as soon when the named target is not registered, whoever else is', async () => {
    const { ready, atMs } = await waitWith(
      () => Promise.resolve([member('n1', 100), member('n2', 100)]),
      'n3',
    );
    expect(ready).toBe(false);
    expect(atMs).toBeLessThan(ALONE_GIVE_UP_MS + 100);
  });

  it('waits the whole timeout for a registered node that is not caught up', async () => {
    const { ready, atMs } = await waitWith(() =>
      Promise.resolve([member('n1', 100), member('n2', 50)]),
    );
    expect(ready).toBe(false);
    expect(atMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
  });

  it('waits the whole timeout when the members cannot be read (etcd unreachable)', async () => {
    const { ready, atMs } = await waitWith(() => Promise.reject(new Error('etcd unreachable')));
    expect(ready).toBe(false);
    expect(atMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
  });

  it('takes a node that registers and catches up within the wait, after a spell alone shorter than ALONE_GIVE_UP_MS', async () => {
    let calls = 0;
    const { ready, atMs } = await waitWith(() => {
      calls++;
      // Alone for the first polls (20 ms apart), then n2 shows up caught up.
      return Promise.resolve(
        calls * 20 < ALONE_GIVE_UP_MS - 100
          ? [member('n1', 100)]
          : [member('n1', 100), member('n2', 100)],
      );
    });
    expect(ready).toBe(true);
    expect(atMs).toBeLessThan(ALONE_GIVE_UP_MS);
  });
});
