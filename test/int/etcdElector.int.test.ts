import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { systemClock } from '../../src/adapters/systemClock.ts';
import { afterEach, describe, expect, it } from 'vitest';
import {
  electionsPrefix,
  leaderKey,
  readFirstElectionAfter,
} from '../../src/adapters/etcd/etcdElection.ts';
import { createEtcdElector } from '../../src/adapters/etcd/etcdElector.ts';
import { readMasterView } from '../../src/adapters/etcd/etcdMembers.ts';
import { MemberIdTakenError, type Elector, type LeaderView } from '../../src/ports/elector.ts';
import { startEtcd, startTcpProxy } from '../harness/index.ts';

const TTL_MS = 2_000;

const clock = systemClock;

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Everything a test opened, closed after it whatever happens. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // Keep cleaning up.
    }
  }
});

function elector(endpoint: string, cluster: string, nodeId: string): Elector {
  const created = createEtcdElector({
    client: { endpoints: [endpoint] },
    cluster,
    nodeId,
    ttlMs: TTL_MS,
    clock,
  });
  cleanups.push(() => created.close());
  return created;
}

/** Observes the leader key, keeping every view seen. */
function watchLeader(observer: Elector): {
  readonly views: (LeaderView | null)[];
  current(): LeaderView | null | undefined;
} {
  const views: (LeaderView | null)[] = [];
  const stop = observer.observe((leader) => views.push(leader));
  cleanups.push(stop);
  return { views, current: () => (views.length === 0 ? undefined : views[views.length - 1]) };
}

/** Campaigns (with a fresh elector each time the lease cannot be had) until one wins; returns the winner. */
async function campaignUntilWon(
  endpoint: string,
  cluster: string,
  nodeId: string,
  timeoutMs: number,
): Promise<{ readonly epoch: number; readonly elector: Elector }> {
  return waitFor(`${nodeId} to win`, timeoutMs, async () => {
    const candidate = elector(endpoint, cluster, nodeId);
    let won = false;
    try {
      await candidate.start();
      const result = await candidate.campaign({ nodeId, address: '' });
      won = result.won;
      return result.won ? { epoch: result.epoch, elector: candidate } : undefined;
    } finally {
      if (!won) await candidate.close();
    }
  });
}

interface HolderEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** test/fixtures/leaseHolder.ts in a child process. */
class LeaseHolder {
  readonly events: HolderEvent[] = [];
  private readonly stderr: string[] = [];
  readonly exited: Promise<void>;
  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    let partial = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() !== '') this.events.push(JSON.parse(line) as HolderEvent);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.stderr.push(chunk);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        resolve();
      });
    });
  }

  static start(
    endpoint: string,
    cluster: string,
    nodeId: string,
    appendKey: string,
    ttlMs = TTL_MS,
  ): LeaseHolder {
    const script = fileURLToPath(new URL('../fixtures/leaseHolder.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: {
        ...process.env,
        ETCD_ENDPOINT: endpoint,
        CLUSTER: cluster,
        NODE_ID: nodeId,
        TTL_MS: String(ttlMs),
        APPEND_KEY: appendKey,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const holder = new LeaseHolder(child);
    cleanups.push(() => holder.stop());
    return holder;
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('leaseHolder did not start');
    return this.child.pid;
  }

  event(name: string, timeoutMs: number): Promise<HolderEvent> {
    return waitFor(
      `leaseHolder event ${name} (events: ${JSON.stringify(this.events)}, stderr: ${this.stderr.join('')})`,
      timeoutMs,
      () => this.events.find((event) => event.event === name || event.event === 'error'),
    ).then((event) => {
      if (event.event === 'error') throw new Error(`leaseHolder failed: ${JSON.stringify(event)}`);
      return event;
    });
  }

  send(command: string): void {
    this.child.stdin.write(`${command}\n`);
  }

  signal(signal: NodeJS.Signals): void {
    process.kill(this.pid, signal);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

const newCluster = (): string => `t${randomUUID().slice(0, 8)}`;

describe('EtcdElector against a real etcd', () => {
  it('elects one of two contenders; the loser sees the leader; resign hands over with a larger epoch', async () => {
    await using etcd = await startEtcd();
    const cluster = newCluster();
    const a = elector(etcd.endpoint, cluster, 'a');
    const b = elector(etcd.endpoint, cluster, 'b');
    await Promise.all([a.start(), b.start()]);
    expect(a.leaseDeadline()).toBeGreaterThan(performance.now());

    const [ra, rb] = await Promise.all([
      a.campaign({ nodeId: 'a', address: 'addr-a' }),
      b.campaign({ nodeId: 'b', address: 'addr-b' }),
    ]);
    expect([ra.won, rb.won].filter(Boolean)).toHaveLength(1);
    const [winner, loser, won, lost] = ra.won ? [a, b, ra, rb] : [b, a, rb, ra];
    if (!won.won || lost.won) throw new Error('unreachable');
    const winnerId = ra.won ? 'a' : 'b';
    expect(lost.leader).toEqual({
      nodeId: winnerId,
      address: `addr-${winnerId}`,
      epoch: won.epoch,
    });
    expect(await loser.leader()).toEqual(lost.leader);

    const seen = watchLeader(loser);
    await waitFor('the loser to observe the winner', 10_000, () =>
      seen.current()?.nodeId === winnerId ? true : undefined,
    );

    await winner.publishMember({
      nodeId: winnerId,
      role: 'primary',
      epoch: won.epoch,
      appliedSeq: 7,
      address: 'm',
      updatedAt: 1,
    });
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => client.close());
    const view = await readMasterView(client, cluster);
    expect(view.leader?.nodeId).toBe(winnerId);
    expect(view.members.map((member) => member.nodeId)).toEqual([winnerId]);

    const lostReasons: string[] = [];
    winner.onLeaseLost((reason) => lostReasons.push(reason));
    await winner.resign();
    expect(lostReasons).toHaveLength(1);
    await waitFor('the loser to observe no leader', 10_000, () =>
      seen.current() === null ? true : undefined,
    );
    // The member record was bound to the resigned lease.
    expect(await loser.members()).toEqual([]);

    const again = await loser.campaign({ nodeId: winnerId === 'a' ? 'b' : 'a', address: 'x' });
    expect(again.won).toBe(true);
    if (again.won) expect(again.epoch).toBeGreaterThan(won.epoch);
    await expect(winner.campaign({ nodeId: winnerId, address: '' })).rejects.toThrow(/lease lost/);
  });

  it('forged EPOCH after compaction (issue 25): an election keeps its record past compaction; a revision without one is no election, never "unverifiable"', async () => {
    await using etcd = await startEtcd();
    const cluster = newCluster();
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => client.close());
    // A win of a version that wrote no election record: the leader key alone, on a lease.
    const legacyLease = client.lease(60, { autoKeepAlive: false });
    cleanups.push(() => legacyLease.revoke());
    await legacyLease.put(leaderKey(cluster)).value(JSON.stringify({ nodeId: 'old', address: '' }));
    const legacy = Number((await client.get(leaderKey(cluster)).exec()).kvs[0]!.create_revision);
    const observer = elector(etcd.endpoint, cluster, 'o');
    expect(await observer.election(legacy, 'old')).toEqual({ kind: 'elected' });
    await legacyLease.revoke();
    expect(await observer.election(legacy, 'old')).toEqual({ kind: 'elected' }); // in history

    const a = elector(etcd.endpoint, cluster, 'a');
    await a.start();
    const first = await a.campaign({ nodeId: 'a', address: '' });
    if (!first.won) throw new Error('a should win an empty election');
    await a.resign();
    const b = elector(etcd.endpoint, cluster, 'b');
    await b.start();
    const second = await b.campaign({ nodeId: 'b', address: '' });
    if (!second.won) throw new Error('b should win after a resigned');
    // The record is a key of its own, bound to no lease, created at the epoch.
    const records = await client.getAll().prefix(electionsPrefix(cluster)).exec();
    const created = records.kvs.map((kv) => [Number(kv.create_revision), kv.lease]);
    expect(created.sort((x, y) => Number(x[0]) - Number(y[0]))).toEqual([
      [first.epoch, '0'],
      [second.epoch, '0'],
    ]);
    // Revisions past the current epoch, then compaction past all of them.
    await client.put('unrelated').value('1');
    await client.put('unrelated').value('2');
    const { header } = await client.get('unrelated').exec();
    expect(Number(header.revision)).toBeGreaterThan(second.epoch + 1);
    await client.kv.compact({ revision: header.revision, physical: true });

    expect(await b.election(first.epoch, 'a')).toEqual({ kind: 'elected' });
    expect(await observer.election(second.epoch, 'b')).toEqual({ kind: 'elected' });
    expect(await observer.election(second.epoch, 'a')).toEqual({
      kind: 'notElected',
      why: `revision ${second.epoch} elected b`,
    });
    // The forger's claim: the current epoch + 1, a revision etcd has compacted away.
    const forged = await observer.election(second.epoch + 1, 'b');
    expect(forged.kind).toBe('notElected');
    if (forged.kind === 'notElected') expect(forged.why).toMatch(/no election record.*compacted/);
    // A win without a record, once its history is compacted, is not confirmed either.
    expect((await observer.election(legacy, 'old')).kind).toBe('notElected');
  });

  it('names the first election after an epoch (what a switchover made, however the group moved on since)', async () => {
    await using etcd = await startEtcd();
    const cluster = newCluster();
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => client.close());
    const epochs: number[] = [];
    for (const id of ['a', 'b', 'a']) {
      const e = elector(etcd.endpoint, cluster, `${id}${epochs.length}`);
      await e.start();
      const won = await e.campaign({ nodeId: id, address: '' });
      if (!won.won) throw new Error(`${id} should win after the last resigned`);
      epochs.push(won.epoch);
      await e.resign();
    }
    const [first, second, third] = epochs as [number, number, number];
    expect(await readFirstElectionAfter(client, cluster, first, third, 3000)).toEqual({
      nodeId: 'b',
      epoch: second,
    });
    expect(await readFirstElectionAfter(client, cluster, second, third, 3000)).toEqual({
      nodeId: 'a',
      epoch: third,
    });
    expect(await readFirstElectionAfter(client, cluster, third, third + 10, 3000)).toBeNull();
  });

  it('frees the leader key within TTL + 1 s of a kill -9 of its holder, and a contender wins with a larger epoch', async () => {
    await using etcd = await startEtcd();
    const cluster = newCluster();
    const holder = LeaseHolder.start(
      etcd.endpoint,
      cluster,
      'holder',
      `/understudy/${cluster}/appended`,
    );
    const won = await holder.event('won', 30_000);
    const contender = elector(etcd.endpoint, cluster, 'contender');
    await contender.start();
    const seen = watchLeader(contender);
    await waitFor('the holder to be observed', 10_000, () =>
      seen.current()?.nodeId === 'holder' ? true : undefined,
    );

    const killedAt = performance.now();
    holder.signal('SIGKILL');
    await waitFor('the leader key to go', TTL_MS + 10_000, () =>
      seen.current() === null ? true : undefined,
    );
    const freedAfterMs = performance.now() - killedAt;
    expect(freedAfterMs).toBeLessThanOrEqual(TTL_MS + 1_000);

    const result = await contender.campaign({ nodeId: 'contender', address: '' });
    expect(result.won).toBe(true);
    if (result.won) expect(result.epoch).toBeGreaterThan(Number(won['epoch']));
  });

  it('takes the node id of a holder of this host that is gone (kill -9) at once, revoking its lease and leader key; a paused holder keeps its id', async () => {
    await using etcd = await startEtcd();
    const cluster = newCluster();
    // Leases far longer than the test: only a revocation frees these ids in time.
    const longTtlMs = 60_000;
    const dead = LeaseHolder.start(etcd.endpoint, cluster, 'dead', `/${cluster}/a`, longTtlMs);
    await dead.event('won', 30_000);
    const paused = LeaseHolder.start(etcd.endpoint, cluster, 'paused', `/${cluster}/b`, longTtlMs);
    await paused.event('lost', 30_000);
    for (const holder of [dead, paused]) {
      holder.send('member');
      await holder.event('member', 10_000);
    }
    const deadPid = dead.pid;
    dead.signal('SIGKILL');
    await dead.exited;
    paused.signal('SIGSTOP');

    const record = (nodeId: string) => ({
      nodeId,
      role: 'starting',
      epoch: 0,
      appliedSeq: 0,
      address: 'http://restarted',
      updatedAt: Date.now(),
    });
    const restarted = elector(etcd.endpoint, cluster, 'dead');
    await restarted.start();
    const startedAt = performance.now();
    const gone = await restarted.publishMember(record('dead'));
    expect(performance.now() - startedAt).toBeLessThan(TTL_MS);
    expect(gone?.address).toBe(`pid:${deadPid}`);
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => client.close());
    const view = await readMasterView(client, cluster);
    // The dead holder's lease held the leader key too: the cluster elects now, not in a minute.
    expect(view.leader).toBeNull();
    expect(view.members.find((m) => m.nodeId === 'dead')?.address).toBe('http://restarted');
    const result = await restarted.campaign({ nodeId: 'dead', address: 'http://restarted' });
    expect(result.won).toBe(true);

    // Stopped is not gone: its process still exists, so its id stays taken.
    const twin = elector(etcd.endpoint, cluster, 'paused');
    await twin.start();
    const refused = await twin.publishMember(record('paused')).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(MemberIdTakenError);
    expect((refused as MemberIdTakenError).holder.address).toBe(`pid:${paused.pid}`);
  });

  it('a holder paused for 2 x TTL finds its deadline passed before it acts, and appends nothing', async () => {
    await using etcd = await startEtcd();
    const cluster = newCluster();
    const appendKey = `/understudy/${cluster}/appended`;
    const holder = LeaseHolder.start(etcd.endpoint, cluster, 'holder', appendKey);
    await holder.event('won', 30_000);
    const observer = elector(etcd.endpoint, cluster, 'observer');
    const seen = watchLeader(observer);
    await waitFor('the holder to be observed', 10_000, () =>
      seen.current()?.nodeId === 'holder' ? true : undefined,
    );

    holder.signal('SIGSTOP');
    const pausedAt = performance.now();
    await waitFor('etcd to expire the paused holder', TTL_MS + 10_000, () =>
      seen.current() === null ? true : undefined,
    );
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, pausedAt + 2 * TTL_MS - performance.now())),
    );
    // Queued while stopped: the first thing the holder can do when it wakes up.
    holder.send('append');
    holder.signal('SIGCONT');

    const refused = await holder.event('refused', 20_000);
    expect(refused['reason']).toBe('deadline passed');
    expect(Number(refused['deadline'])).toBeLessThan(Number(refused['now']));
    // The holder's clock counts from its process's start like ours (timeOrigin + monotonic).
    expect(Number(refused['deadline'])).toBeLessThanOrEqual(
      performance.timeOrigin + pausedAt + TTL_MS,
    );
    expect(holder.events.some((event) => event.event === 'appended')).toBe(false);
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => client.close());
    expect(await client.get(appendKey).string()).toBeNull();
  });

  it('fires the deadline while etcd is paused, and campaigns work again after resume and after a restart', async () => {
    await using etcd = await startEtcd();
    const cluster = newCluster();
    const holder = elector(etcd.endpoint, cluster, 'holder');
    await holder.start();
    expect((await holder.campaign({ nodeId: 'holder', address: '' })).won).toBe(true);
    const lost: { reason: string; at: number }[] = [];
    holder.onLeaseLost((reason) => lost.push({ reason, at: performance.now() }));
    // An observer that lives through the pause and the restart (its watch reconnects).
    const seen = watchLeader(elector(etcd.endpoint, cluster, 'observer'));
    await waitFor('the observer to see the holder', 10_000, () =>
      seen.current()?.nodeId === 'holder' ? true : undefined,
    );

    const pausedAt = performance.now();
    etcd.pause();
    try {
      await waitFor('the deadline to fire', TTL_MS + 10_000, () =>
        lost.length > 0 ? true : undefined,
      );
      expect(lost).toHaveLength(1);
      expect(lost[0]?.reason).toMatch(/deadline/);
      expect(holder.leaseDeadline()).toBeLessThanOrEqual(lost[0]?.at ?? 0);
      expect(holder.leaseDeadline()).toBeLessThanOrEqual(pausedAt + TTL_MS);
      // A call to the unreachable etcd rejects in bounded time instead of hanging.
      await expect(holder.leader()).rejects.toThrow();
    } finally {
      etcd.resume();
    }
    const afterResume = await campaignUntilWon(etcd.endpoint, cluster, 'second', 30_000);
    expect(afterResume.epoch).toBeGreaterThan(0);
    // Stop keeping 'second' alive (without revoking): after the restart its lease runs out.
    await afterResume.elector.close();

    await etcd.kill();
    await etcd.restart();
    const afterRestart = await campaignUntilWon(etcd.endpoint, cluster, 'third', 30_000);
    expect(afterRestart.epoch).toBeGreaterThan(afterResume.epoch);
    await waitFor('the observer to see the leader elected after the restart', 20_000, () =>
      seen.current()?.epoch === afterRestart.epoch ? true : undefined,
    );
  });

  it('fires the deadline when the connection to etcd is cut, and campaigns work again once restored', async () => {
    await using etcd = await startEtcd();
    await using proxy = await startTcpProxy(etcd.port);
    const viaProxy = `http://127.0.0.1:${proxy.port}`;
    const cluster = newCluster();
    const holder = elector(viaProxy, cluster, 'holder');
    await holder.start();
    const first = await holder.campaign({ nodeId: 'holder', address: '' });
    expect(first.won).toBe(true);
    const lost: string[] = [];
    holder.onLeaseLost((reason) => lost.push(reason));

    proxy.cut();
    await waitFor('the deadline to fire', TTL_MS + 10_000, () =>
      lost.length > 0 ? true : undefined,
    );
    expect(lost[0]).toMatch(/deadline/);
    expect(holder.leaseDeadline()).toBeLessThan(performance.now());

    proxy.restore();
    const second = await campaignUntilWon(viaProxy, cluster, 'second', 30_000);
    if (first.won) expect(second.epoch).toBeGreaterThan(first.epoch);
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    cleanups.push(() => client.close());
    expect(JSON.parse((await client.get(leaderKey(cluster)).string()) ?? 'null')).toMatchObject({
      nodeId: 'second',
    });
  });
  it('fires the deadline when the network to etcd goes silent (blackhole), and calls reject in bounded time', async () => {
    await using etcd = await startEtcd();
    await using proxy = await startTcpProxy(etcd.port);
    const viaProxy = `http://127.0.0.1:${proxy.port}`;
    const cluster = newCluster();
    const holder = elector(viaProxy, cluster, 'holder');
    await holder.start();
    const first = await holder.campaign({ nodeId: 'holder', address: '' });
    expect(first.won).toBe(true);
    const lost: string[] = [];
    holder.onLeaseLost((reason) => lost.push(reason));

    proxy.blackhole();
    const silentAt = performance.now();
    await waitFor('the deadline to fire', TTL_MS + 10_000, () =>
      lost.length > 0 ? true : undefined,
    );
    expect(lost[0]).toMatch(/deadline/);
    expect(holder.leaseDeadline()).toBeLessThanOrEqual(silentAt + TTL_MS);
    const askedAt = performance.now();
    await expect(holder.leader()).rejects.toThrow();
    // Bounded by the call timeout (min(3 s, TTL)), with a generous margin for a loaded machine.
    expect(performance.now() - askedAt).toBeLessThan(TTL_MS + 5_000);

    proxy.restore();
    const second = await campaignUntilWon(viaProxy, cluster, 'second', 30_000);
    if (first.won) expect(second.epoch).toBeGreaterThan(first.epoch);
  });
});
