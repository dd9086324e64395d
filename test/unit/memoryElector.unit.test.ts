import { describe, expect, it } from 'vitest';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import {
  CoordinatorReplyLostError,
  CoordinatorUnavailableError,
} from '../../src/adapters/memory/memoryCoordinatorFaults.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { ElectorStateError, type LeaderView } from '../../src/ports/elector.ts';

const TTL = 3_000;
const MARGIN = 500;

function world() {
  const clock = new SimClock(10_000);
  const coord = new MemoryCoordinator(clock);
  const elector = (nodeId: string) =>
    createMemoryElector(coord, { nodeId, ttlMs: TTL, marginMs: MARGIN, clock });
  return { clock, coord, elector };
}

const info = (nodeId: string) => ({ nodeId, address: `http://${nodeId}` });

describe('memory elector', () => {
  it('sets the deadline from when the last keep-alive was sent', async () => {
    const { clock, elector } = world();
    const a = elector('a');
    await a.start();
    expect(a.leaseDeadline()).toBe(10_000 + TTL - MARGIN);
    await clock.advanceAsync(TTL / 3);
    expect(a.leaseDeadline()).toBe(11_000 + TTL - MARGIN);
    await clock.advanceAsync(10 * TTL);
    expect(a.leaseDeadline()).toBe(41_000 + TTL - MARGIN);
    await a.close();
  });

  it('a partitioned leader passes its own deadline before the coordinator expires its lease', async () => {
    const { clock, coord, elector } = world();
    const a = elector('a');
    const b = elector('b');
    await Promise.all([a.start(), b.start()]);
    const won = await a.campaign(info('a'));
    expect(won.won).toBe(true);
    const lostAt: [string, number, LeaderView | null][] = [];
    a.onLeaseLost((reason) => lostAt.push([reason, clock.now(), coord.currentLeader()]));
    const seenByA: (LeaderView | null)[] = [];
    a.observe((leader) => seenByA.push(leader));
    await clock.advanceAsync(0);
    expect(seenByA).toHaveLength(1);

    await clock.advanceAsync(500); // between keep-alives: last one sent at 10_000
    coord.partition('a');
    await expect(a.leader()).rejects.toBeInstanceOf(CoordinatorUnavailableError);
    await clock.advanceAsync(TTL);
    // Cut at 10_500: the last renewal was the grant at 10_000. a's deadline (12_500) passes
    // while the coordinator still holds its key; the lease expires there at 13_000.
    expect(lostAt).toHaveLength(1);
    const [reason, when, leaderThen] = lostAt[0] ?? ['', 0, null];
    expect(reason).toMatch(/deadline/);
    expect(when).toBe(10_000 + TTL - MARGIN);
    expect(leaderThen?.nodeId).toBe('a');
    expect(coord.currentLeader()).toBeNull();
    // b wins with a larger epoch; a heard nothing while cut off, and hears the truth on heal.
    const next = await b.campaign(info('b'));
    expect(next.won && won.won && next.epoch > won.epoch).toBe(true);
    expect(seenByA).toEqual([expect.objectContaining({ nodeId: 'a' })]);
    coord.heal('a');
    await clock.advanceAsync(0);
    expect(seenByA[seenByA.length - 1]?.nodeId).toBe('b');
    await expect(a.campaign(info('a'))).rejects.toBeInstanceOf(ElectorStateError);
    await Promise.all([a.close(), b.close()]);
  });

  it('a healed node whose lease expired hears it on its next keep-alive', async () => {
    const { clock, coord } = world();
    const a = createMemoryElector(coord, {
      nodeId: 'a',
      ttlMs: TTL,
      marginMs: 0,
      keepAliveIntervalMs: TTL / 3,
      clock,
    });
    await a.start();
    const reasons: string[] = [];
    a.onLeaseLost((reason) => reasons.push(reason));
    coord.partition('a');
    await clock.advanceAsync(TTL - 1);
    expect(reasons).toEqual([]);
    coord.heal('a');
    await clock.advanceAsync(TTL);
    expect(reasons).toHaveLength(1);
    expect(coord.liveLeases()).toEqual([]);
    await a.close();
  });

  it('fires onLeaseLost once, also for handlers added after the loss', async () => {
    const { clock, coord, elector } = world();
    const a = elector('a');
    await a.start();
    const reasons: string[] = [];
    a.onLeaseLost((reason) => reasons.push(reason));
    coord.partition('a');
    await clock.advanceAsync(3 * TTL);
    a.onLeaseLost((reason) => reasons.push(`late: ${reason}`));
    await clock.advanceAsync(0);
    expect(reasons).toHaveLength(2);
    expect(reasons[1]).toMatch(/^late: /);
    await a.close();
  });

  it('close stops keep-alives without revoking; the lease then expires', async () => {
    const { clock, coord, elector } = world();
    const a = elector('a');
    await a.start();
    await a.publishMember({
      nodeId: 'a',
      role: 'standby',
      epoch: 0,
      appliedSeq: 0,
      address: 'x',
      updatedAt: clock.now(),
    });
    const reasons: string[] = [];
    a.onLeaseLost((reason) => reasons.push(reason));
    await a.close();
    expect(coord.liveLeases()).toHaveLength(1);
    await clock.advanceAsync(TTL);
    expect(coord.liveLeases()).toEqual([]);
    expect(coord.members('observer')).toEqual([]);
    expect(reasons).toEqual([]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a campaign whose answer is lost takes effect: the caller fails after its call timeout', async () => {
    const { clock, coord, elector } = world();
    const a = elector('a');
    await a.start();
    coord.setReplyFate('a', { kind: 'lose' });
    const outcome = a.campaign(info('a')).then(
      () => 'resolved',
      (err: unknown) => err,
    );
    await clock.advanceAsync(0);
    // The key exists (bound to a's lease) while a still waits for the answer.
    expect(coord.currentLeader()?.nodeId).toBe('a');
    await clock.advanceAsync(TTL);
    expect(await outcome).toBeInstanceOf(CoordinatorReplyLostError);
    expect(coord.currentLeader()?.nodeId).toBe('a');
    await a.close();
  });

  it('a late answer arrives after the delay; later than the call timeout, the call fails', async () => {
    const { clock, coord, elector } = world();
    const a = elector('a');
    const b = elector('b');
    await Promise.all([a.start(), b.start()]);
    coord.setReplyFate('a', { kind: 'delay', ms: 200 });
    let won: boolean | undefined;
    void a.campaign(info('a')).then((r) => {
      won = r.won;
    });
    await clock.advanceAsync(199);
    expect(won).toBeUndefined();
    await clock.advanceAsync(1);
    expect(won).toBe(true);
    // Resigning with a lost answer still deletes the key and gives the lease up locally.
    coord.setReplyFate('a', { kind: 'lose' });
    const resigned = a.resign().then(
      () => 'resolved',
      (err: unknown) => err,
    );
    await clock.advanceAsync(0);
    expect(coord.currentLeader()).toBeNull();
    await clock.advanceAsync(TTL);
    expect(await resigned).toBeInstanceOf(CoordinatorReplyLostError);
    coord.setReplyFate('a', undefined);
    await expect(b.campaign(info('b'))).resolves.toMatchObject({ won: true });
    await Promise.all([a.close(), b.close()]);
  });
});
