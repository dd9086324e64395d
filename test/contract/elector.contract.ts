// The Elector port's contract, run against every adapter (memory, etcd).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ElectorStateError,
  type Elector,
  type LeaderView,
  type MemberIdTakenError,
} from '../../src/ports/elector.ts';

export interface ElectorContractSetup {
  /** An elector for `nodeId` (not started) over the same store as every other of this setup. */
  makeElector(nodeId: string, ttlMs: number): Promise<Elector>;
  /** Lets `ms` of the electors' clock pass (simulation: advance the clock; real: sleep). */
  advance(ms: number): Promise<void>;
  cleanup(): Promise<void>;
  /** The electors' monotonic clock; default `performance.now`. */
  now?(): number;
  /** Cuts `nodeId` off from the store so its keep-alives fail. */
  isolate(nodeId: string): Promise<void>;
  /**
   * Discards the store's history up to its current revision (etcd: compaction). Absent for a
   * store that keeps no history to discard.
   */
  compact?(): Promise<void>;
}

/** Lease TTL for the contract: long enough for a loaded machine, short enough to expire. */
const TTL_MS = 3_000;
/** Upper bound on how long anything the contract waits for may take, in clock time. */
const WAIT_MS = 20_000;
const STEP_MS = 25;

/** Registers the Elector contract tests; `setup` runs before each test with a fresh store. */
export function describeElectorContract(
  name: string,
  setup: () => Promise<ElectorContractSetup>,
): void {
  describe(`Elector contract: ${name}`, () => {
    let ctx: ElectorContractSetup | undefined;
    const electors: Elector[] = [];

    const current = (): ElectorContractSetup => {
      if (ctx === undefined) throw new Error('setup did not run');
      return ctx;
    };
    const now = (): number => current().now?.() ?? performance.now();
    const started = async (nodeId: string, ttlMs = TTL_MS): Promise<Elector> => {
      const elector = await current().makeElector(nodeId, ttlMs);
      electors.push(elector);
      await elector.start();
      return elector;
    };
    /** Lets time pass in small steps until `condition` holds. */
    const eventually = async (what: string, condition: () => boolean): Promise<void> => {
      for (let waited = 0; waited <= WAIT_MS; waited += STEP_MS) {
        if (condition()) return;
        await current().advance(STEP_MS);
      }
      throw new Error(`not within ${WAIT_MS} ms: ${what}`);
    };
    const info = (nodeId: string) => ({ nodeId, address: `http://${nodeId}.test:9100` });

    beforeEach(async () => {
      ctx = await setup();
    });

    afterEach(async () => {
      for (const elector of electors.splice(0)) await elector.close();
      await ctx?.cleanup();
      ctx = undefined;
    });

    it('elects exactly one of several concurrent candidates', async () => {
      const nodes = ['n1', 'n2', 'n3'];
      const all = await Promise.all(nodes.map((node) => started(node)));
      const results = await Promise.all(
        all.map((elector, i) => elector.campaign(info(nodes[i] ?? ''))),
      );
      const winners = results.flatMap((result, i) =>
        result.won ? [{ i, epoch: result.epoch }] : [],
      );
      expect(winners).toHaveLength(1);
      const winner = winners[0];
      if (winner === undefined) throw new Error('no winner');
      const expected: LeaderView = { ...info(nodes[winner.i] ?? ''), epoch: winner.epoch };
      for (const result of results) {
        if (!result.won) expect(result.leader).toEqual(expected);
      }
      for (const elector of all) expect(await elector.leader()).toEqual(expected);
    });

    it('gives every later win a larger epoch', async () => {
      const a = await started('a');
      const b = await started('b');
      const first = await a.campaign(info('a'));
      if (!first.won) throw new Error('a should win an empty election');
      expect(first.epoch).toBeGreaterThan(0);
      await a.resign();
      const second = await b.campaign(info('b'));
      if (!second.won) throw new Error('b should win after a resigned');
      expect(second.epoch).toBeGreaterThan(first.epoch);
      await b.resign();
      const c = await started('c');
      const third = await c.campaign(info('c'));
      if (!third.won) throw new Error('c should win after b resigned');
      expect(third.epoch).toBeGreaterThan(second.epoch);
    });

    it('tells a real election (held now, or given up since, handed over too) from a claimed one', async () => {
      const a = await started('a');
      const b = await started('b');
      const observer = await current().makeElector('o', TTL_MS); // needs no lease
      electors.push(observer);
      const first = await a.campaign(info('a'));
      if (!first.won) throw new Error('a should win an empty election');
      expect(await observer.election(first.epoch, 'a')).toEqual({ kind: 'elected' });
      expect((await observer.election(first.epoch, 'b')).kind).toBe('notElected');
      await a.resign({ handoverTo: 'b' });
      const second = await b.campaign(info('b'));
      if (!second.won) throw new Error('b should win after a resigned');
      // a's election is history now: still a real one, by a only.
      expect(await observer.election(first.epoch, 'a')).toEqual({ kind: 'elected' });
      expect((await observer.election(first.epoch, 'b')).kind).toBe('notElected');
      expect(await observer.election(second.epoch, 'b')).toEqual({ kind: 'elected' });
      // Revisions at which nobody won, and ones beyond the store's: no election.
      expect((await observer.election(second.epoch - 1, 'b')).kind).toBe('notElected');
      expect((await observer.election(second.epoch + 1, 'b')).kind).toBe('notElected');
      expect((await observer.election(1_000_000_000, 'b')).kind).toBe('notElected');
    });

    it('tells a real election from a claimed one alike after the store compacted its history (issue 25)', async () => {
      const a = await started('a');
      const b = await started('b');
      const observer = await current().makeElector('o', TTL_MS);
      electors.push(observer);
      const first = await a.campaign(info('a'));
      if (!first.won) throw new Error('a should win an empty election');
      await a.resign();
      const second = await b.campaign(info('b'));
      if (!second.won) throw new Error('b should win after a resigned');
      // Revisions the store has passed since: the ones a forger picks (current epoch + 1, ...).
      await b.publishMember({
        ...info('b'),
        role: 'primary',
        epoch: second.epoch,
        appliedSeq: 0,
        updatedAt: 0,
      });
      await b.publishMember({
        ...info('b'),
        role: 'primary',
        epoch: second.epoch,
        appliedSeq: 1,
        updatedAt: 1,
      });
      await current().compact?.();
      expect(await observer.election(first.epoch, 'a')).toEqual({ kind: 'elected' });
      expect((await observer.election(first.epoch, 'b')).kind).toBe('notElected');
      expect(await observer.election(second.epoch, 'b')).toEqual({ kind: 'elected' });
      for (const claim of [second.epoch + 1, second.epoch + 2, first.epoch + 1]) {
        for (const claimant of ['a', 'b', 'o']) {
          expect((await observer.election(claim, claimant)).kind, `${claim} ${claimant}`).toBe(
            'notElected',
          );
        }
      }
      expect((await observer.election(0, 'b')).kind).toBe('notElected');
      expect((await observer.election(-1, 'b')).kind).toBe('notElected');
      expect((await observer.election(1.5, 'b')).kind).toBe('notElected');
    });

    it('lets observers see the leader and its deletion', async () => {
      const a = await started('a');
      const watcher = await started('w');
      const seen: (LeaderView | null)[] = [];
      const stop = watcher.observe((leader) => seen.push(leader));
      await eventually('the initial (empty) leader is reported', () => seen.length >= 1);
      expect(seen[0]).toBeNull();
      const won = await a.campaign(info('a'));
      if (!won.won) throw new Error('a should win');
      await eventually('the new leader is reported', () => seen.some((v) => v?.nodeId === 'a'));
      expect(seen.find((v) => v !== null)).toEqual({ ...info('a'), epoch: won.epoch });
      await a.resign();
      await eventually('the deletion is reported', () => seen[seen.length - 1] === null);
      stop();
    });

    it('lets another node win after the leader resigns, and tells the resigner', async () => {
      const a = await started('a');
      const b = await started('b');
      const reasons: string[] = [];
      a.onLeaseLost((reason) => reasons.push(reason));
      expect((await a.campaign(info('a'))).won).toBe(true);
      const lost = await b.campaign(info('b'));
      expect(lost.won).toBe(false);
      if (!lost.won) expect(lost.leader?.nodeId).toBe('a');
      await a.resign();
      expect((await b.campaign(info('b'))).won).toBe(true);
      expect((await a.leader())?.nodeId).toBe('b');
      await eventually('the resigner hears its lease is gone', () => reasons.length === 1);
    });

    it('grants a new lease on start() after the old one was given up, and can win again', async () => {
      const a = await started('a');
      const first = await a.campaign(info('a'));
      expect(first.won).toBe(true);
      await a.resign();
      expect(a.leaseDeadline()).toBeLessThanOrEqual(now() + TTL_MS);
      await a.start();
      expect(a.leaseDeadline()).toBeGreaterThan(now());
      const again = await a.campaign(info('a'));
      expect(again.won).toBe(true);
      if (first.won && again.won) expect(again.epoch).toBeGreaterThan(first.epoch);
    });

    it('refuses a campaign before start() and after close() with ElectorStateError', async () => {
      const a = await current().makeElector('a', TTL_MS);
      electors.push(a);
      const notStarted = a.campaign(info('a'));
      await expect(notStarted).rejects.toBeInstanceOf(ElectorStateError);
      await expect(notStarted).rejects.toMatchObject({ state: 'notStarted' });
      await a.start();
      await a.close();
      const closed = a.campaign(info('a'));
      await expect(closed).rejects.toBeInstanceOf(ElectorStateError);
      await expect(closed).rejects.toMatchObject({ state: 'closed' });
    });

    it('keeps a lease alive across several TTLs and keeps its deadline within one TTL', async () => {
      const a = await started('a');
      const lost: string[] = [];
      a.onLeaseLost((reason) => lost.push(reason));
      const startedAt = now();
      expect(a.leaseDeadline()).toBeGreaterThan(startedAt);
      expect(a.leaseDeadline()).toBeLessThanOrEqual(startedAt + TTL_MS);
      expect((await a.campaign(info('a'))).won).toBe(true);
      const firstDeadline = a.leaseDeadline();
      await eventually('the deadline moves on', () => a.leaseDeadline() > firstDeadline);
      for (let elapsed = 0; elapsed < 2 * TTL_MS; elapsed += TTL_MS / 6) {
        await current().advance(TTL_MS / 6);
        expect(a.leaseDeadline()).toBeLessThanOrEqual(now() + TTL_MS);
      }
      expect(lost).toEqual([]);
      expect((await a.leader())?.nodeId).toBe('a');
    });

    it('registers members bound to their lease', async () => {
      const a = await started('a');
      const b = await started('b');
      const record = (nodeId: string, role: string) => ({
        nodeId,
        role,
        epoch: 1,
        appliedSeq: 7,
        address: info(nodeId).address,
        updatedAt: now(),
      });
      await a.publishMember(record('a', 'primary'));
      await b.publishMember(record('b', 'standby'));
      await b.publishMember(record('b', 'syncing'));
      const members = await a.members();
      expect([...members].sort((x, y) => x.nodeId.localeCompare(y.nodeId))).toEqual(
        [record('a', 'primary'), record('b', 'syncing')].map((r) => ({
          ...r,
          updatedAt: expect.any(Number) as number,
        })),
      );
      await a.resign();
      expect((await b.members()).map((m) => m.nodeId)).toEqual(['b']);
    });

    it('registers an id once: a second process with it is refused and told the holder', async () => {
      const a = await started('a');
      const twin = await started('a');
      const record = (address: string, role: string) => ({
        nodeId: 'a',
        role,
        epoch: 0,
        appliedSeq: 0,
        address,
        updatedAt: now(),
      });
      await a.publishMember(record('http://first', 'standby'));
      const taken = await twin.publishMember(record('http://second', 'starting')).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(taken).toMatchObject({
        name: 'MemberIdTakenError',
        nodeId: 'a',
        holder: { address: 'http://first' },
      });
      // The holder's lease is live: the coordinator keeps it for a while yet (whole seconds in
      // etcd; keep-alives every TTL/3 keep it above 1 s).
      expect((taken as MemberIdTakenError).holderLeaseRemainingMs).toBeGreaterThanOrEqual(1000);
      expect((taken as MemberIdTakenError).holderLeaseRemainingMs).toBeLessThanOrEqual(TTL_MS);
      // The holder updates its own record; the record stays the holder's.
      await a.publishMember(record('http://first', 'primary'));
      expect(await twin.members()).toMatchObject([{ address: 'http://first', role: 'primary' }]);
      // Once the holder's lease is gone, the id is free.
      await a.resign();
      await twin.publishMember(record('http://second', 'standby'));
      expect(await a.members()).toMatchObject([{ address: 'http://second' }]);
    });

    it('loses the lease of a node whose keep-alives stop, and lets another win', async () => {
      const fixture = current();
      const a = await started('a');
      const b = await started('b');
      const reasons: string[] = [];
      a.onLeaseLost((reason) => reasons.push(reason));
      const won = await a.campaign(info('a'));
      if (!won.won) throw new Error('a should win');
      const seen: (LeaderView | null)[] = [];
      const stop = b.observe((leader) => seen.push(leader));
      await fixture.isolate('a');
      const cutAt = now();
      await eventually('a hears its lease is lost', () => reasons.length === 1);
      expect(now()).toBeLessThanOrEqual(cutAt + TTL_MS + WAIT_MS);
      expect(a.leaseDeadline()).toBeLessThanOrEqual(now());
      await eventually('b sees the leader key deleted', () => seen[seen.length - 1] === null);
      const next = await b.campaign(info('b'));
      if (!next.won) throw new Error('b should win once a lease expired');
      expect(next.epoch).toBeGreaterThan(won.epoch);
      stop();
    });
  });
}
