// The campaign and promotion actors against the memory adapters on a simulated clock: what a
// promotion that is cancelled, or cannot finish, leaves behind.
import { describe, expect, it } from 'vitest';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import { ElectionChecks } from '../../src/node/state/electionChecks.ts';
import { PrimaryTerm } from '../../src/node/state/primaryTerm.ts';
import { promote, PromotionStoppedError } from '../../src/node/actors/promote.ts';
import { NodeLease } from '../../src/node/state/nodeLease.ts';
import { electedMemoryElector } from '../fixtures/electedMemoryElector.ts';
import { METADATA_DOMAIN, metadataReadLeases, metadataStore } from '../fixtures/metadataNode.ts';

const TTL = 2000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A node that won epoch `epoch`'s campaign, one entry behind a log of one entry. */
async function candidate(opLogTimeoutMs?: number) {
  const clock = new SimClock(1_000_000);
  const coord = new MemoryCoordinator(clock);
  const logStore = new MemoryLogStore();
  const opLog = createMemoryOpLog(logStore, {
    nodeId: 'n1',
    clock,
    ...(opLogTimeoutMs === undefined ? {} : { timeoutMs: opLogTimeoutMs }),
  });
  // Epoch 1 was n0's: it campaigned, wrote its fence and resigned.
  const previous = createMemoryElector(coord, { nodeId: 'n0', ttlMs: TTL, clock });
  await previous.start();
  await previous.campaign({ nodeId: 'n0', address: 'sim://n0' });
  await previous.resign();
  const seed = opLog.openWriter({ expectedLastStreamSeq: 0 });
  const first = {
    seq: 1,
    epoch: 1,
    ts: 0,
    event: { op: 'EPOCH' as const, epoch: 1, nodeId: 'n0' },
  };
  const seeding = seed.append([toEntry(first)]);
  await clock.advanceAsync(0);
  await seeding;
  const { elector, epoch } = await electedMemoryElector(clock, coord, { nodeId: 'n1', ttlMs: TTL });
  const store = metadataStore();
  const term = new PrimaryTerm();
  const deps = { opLog, elector, clock, logger: quiet, nodeId: 'n1' };
  const ctx = {
    ...deps,
    config: { leaseTtlMs: TTL },
    store,
    lease: new NodeLease(elector, clock),
    checks: new ElectionChecks(deps, 100, METADATA_DOMAIN.log),
    leases: metadataReadLeases(clock, TTL),
    domain: METADATA_DOMAIN,
    term,
  };
  const run = (signal: AbortSignal) => promote({ input: { epoch }, signal, ctx });
  return { clock, coord, logStore, store, term, opLog, run };
}

const outcome = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    (value) => value,
    (err: unknown) => err,
  );

describe('promotion', () => {
  it('a cancelled promotion appends no fence, keeps no writer and gives the leader key up', async () => {
    const c = await candidate(1000);
    // The drain cannot read the log: it waits.
    c.logStore.partition('n1');
    const abort = new AbortController();
    const result = outcome(c.run(abort.signal));
    await c.clock.advanceAsync(100);
    abort.abort();
    await c.clock.advanceAsync(10);
    c.logStore.heal('n1');
    await c.clock.advanceAsync(100);
    expect(await result).toMatchObject({ name: 'PromotionStoppedError', reason: 'cancelled' });
    expect(c.logStore.entries().map((e) => e.op)).toEqual(['EPOCH']);
    expect(c.term.writer).toBeUndefined();
    expect(c.coord.currentLeader()).toBeNull();
  });

  it('a promotion cancelled before it began leaves no rejection unhandled when the log refuses (a stopping node: exit code 1)', async () => {
    // Regression (inspect.e2e under CI, Node 24): SIGTERM came while the candidate waited to
    // promote; the promotion began with its signal aborted, asked the log for its bounds on a
    // NATS connection already draining, and nobody handled that rejection, so the node's stop
    // ended in an uncaught DrainingConnectionError and exit code 1.
    const c = await candidate(1000);
    // A plain function, not a spy: a spy handles the promises it returns (to record them).
    let asked = 0;
    c.opLog.bounds = () => {
      asked += 1;
      return Promise.reject(new Error('connection draining'));
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const abort = new AbortController();
      abort.abort();
      const result = outcome(c.run(abort.signal));
      await c.clock.advanceAsync(10);
      expect(await result).toMatchObject({ name: 'PromotionStoppedError', reason: 'cancelled' });
      // An unhandled rejection is reported after the microtasks of the turn it happened in.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
    expect(asked).toBeLessThanOrEqual(1);
    expect(c.logStore.entries().map((e) => e.op)).toEqual(['EPOCH']);
    expect(c.coord.currentLeader()).toBeNull();
  });

  it('a promotion that cannot reach the log gives up within its timeout (the TTL)', async () => {
    // Without a call timeout of its own, the log would keep the promotion waiting for ever.
    const c = await candidate(undefined);
    c.logStore.partition('n1');
    const result = outcome(c.run(new AbortController().signal));
    await c.clock.advanceAsync(TTL - 1);
    expect(c.coord.currentLeader()?.nodeId).toBe('n1');
    await c.clock.advanceAsync(10);
    const err = await result;
    expect(err).toBeInstanceOf(PromotionStoppedError);
    expect(err).toMatchObject({ reason: 'timeout' });
    expect(c.term.writer).toBeUndefined();
    expect(c.coord.currentLeader()).toBeNull();
  });

  it('a promotion whose log did not answer (a NATS reconnect, a stream electing its leader) asks again and writes the fence within its timeout', async () => {
    // Regression: the first failed bounds() used to end the promotion, so a candidate that
    // asked while its connection was moving off a hung server gave the lease up for nothing.
    const c = await candidate(500);
    c.logStore.partition('n1');
    const result = outcome(c.run(new AbortController().signal));
    await c.clock.advanceAsync(600);
    c.logStore.heal('n1');
    await c.clock.advanceAsync(TTL / 2);
    expect(await result).toEqual({ epoch: expect.any(Number) as unknown, appliedSeq: 2 });
    expect(c.logStore.entries().map((e) => e.op)).toEqual(['EPOCH', 'EPOCH']);
    expect(c.term.writer).toBeDefined();
    expect(c.coord.currentLeader()?.nodeId).toBe('n1');
  });

  it('a promotion that can reach the log drains it and writes the fence', async () => {
    const c = await candidate(1000);
    const result = outcome(c.run(new AbortController().signal));
    await c.clock.advanceAsync(10);
    expect(await result).toEqual({ epoch: expect.any(Number) as unknown, appliedSeq: 2 });
    expect(c.logStore.entries().map((e) => e.op)).toEqual(['EPOCH', 'EPOCH']);
    expect(c.term.writer).toBeDefined();
  });
});
