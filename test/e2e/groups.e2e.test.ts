// Groups on the node side, end to end: node processes hosting a member of every group over real
// etcd and nats-server. The primaries spread (each group on the process it prefers), /status and
// /metrics speak per group, and a node started with another group count is refused.
import { Etcd3 } from 'etcd3';
import { afterEach, describe, expect, it } from 'vitest';
import { claimGroupCount } from '../../src/adapters/etcd/clusterGroupsRecord.ts';
import { preferredNodes } from '../../src/domain/model/groupPreference.ts';
import { NodeFleet, NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { groupCluster } from '../../src/api/subjects.ts';
import { createClient } from '../../src/client/nats.ts';
import { groupOfKey } from '../../src/domain/model/groups.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import { Workload, type AckRecord } from '../../src/tools/localCluster/workload.ts';
import { sseParser } from '../../src/tools/inspect/clusterSource.ts';
import type { PageMessage } from '../../src/tools/inspect/inspectHub.ts';
import { runCli, startCliServer } from '../harness/cli.ts';
import { expectAcksInLog, expectLinearHistory } from '../harness/logChecks.ts';
import { startEtcd, startNats } from '../harness/index.ts';

const TTL = 2000;
const GROUPS = 4;
const IDS = ['n1', 'n2', 'n3'];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

interface GroupRow {
  readonly group: number;
  readonly cluster: string;
  readonly role: string;
  readonly epoch: number;
  readonly appliedSeq: number;
}
interface GroupsStatus {
  readonly nodeId: string;
  readonly groupCount: number;
  readonly groups?: readonly GroupRow[];
}

async function groupsStatus(node: NodeHandle): Promise<GroupsStatus> {
  const res = await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as GroupsStatus;
}

/** The primary of each group by node id (undefined: none, or more than one), read now. */
async function primaries(nodes: readonly NodeHandle[]): Promise<(string | undefined)[]> {
  const statuses = await Promise.all(
    nodes.filter((n) => n.running).map((n) => groupsStatus(n).catch(() => undefined)),
  );
  return Array.from({ length: GROUPS }, (_, g) => {
    const leaders = statuses.filter((s) => s?.groups?.[g]?.role === 'primary');
    return leaders.length === 1 ? leaders[0]?.nodeId : undefined;
  });
}

async function waitFor<T>(
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

async function startServers(): Promise<{ nats: string; etcd: string }> {
  const etcd = await startEtcd();
  cleanups.push(async () => {
    await etcd[Symbol.asyncDispose]();
  });
  const nats = await startNats();
  cleanups.push(async () => {
    await nats[Symbol.asyncDispose]();
  });
  return { nats: nats.url, etcd: etcd.endpoint };
}

type NodesMessage = Extract<PageMessage, { kind: 'nodes' }>;

/**
 * The first node list `understudy inspect` at `url` tells its page (`/api/stream`) for which
 * `done` holds (30 s at most).
 */
async function pageNodes(url: string, done: (m: NodesMessage) => boolean): Promise<NodesMessage> {
  const res = await fetch(`${url}/api/stream`, { signal: AbortSignal.timeout(30_000) });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let found: NodesMessage | undefined;
  const parse = sseParser((data) => {
    const message = JSON.parse(data) as PageMessage;
    if (message.kind === 'nodes' && done(message)) found ??= message;
  });
  try {
    while (found === undefined) {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error('the page stream ended');
      parse(value);
    }
    return found;
  } finally {
    await reader.cancel();
  }
}

/**
 * etcd, nats-server and 3 node processes x 4 groups (`--group-threads threads`, `env` added to
 * each node's), once every group is led by the process it prefers.
 */
async function startGroupFleet(
  threads: string,
  env?: Readonly<Record<string, string>>,
): Promise<{
  servers: { nats: string; etcd: string };
  fleet: NodeFleet;
  expected: (string | undefined)[];
}> {
  const servers = await startServers();
  const fleet = await NodeFleet.start(IDS, {
    cluster: 'grp',
    nats: [servers.nats],
    etcd: [servers.etcd],
    leaseTtlMs: TTL,
    extraArgs: ['--groups', String(GROUPS), '--group-threads', threads],
    ...(env === undefined ? {} : { env }),
  });
  cleanups.push(() => fleet[Symbol.asyncDispose]());
  const expected = preferredNodes(GROUPS, IDS);
  await waitFor(
    'each group led by the process it prefers',
    () => primaries(fleet.nodes),
    (p) => p.every((id, g) => id === expected[g]),
    90_000,
  );
  return { servers, fleet, expected };
}

/**
 * Two writers on each of `groups` through today's client, one per group pointed at the group's
 * name; resolves once each has 100 acknowledgements.
 */
async function writing(nats: string, groups: readonly number[]): Promise<Workload[]> {
  const loads: Workload[] = [];
  for (const g of groups) {
    const client = await createClient({
      servers: nats,
      cluster: groupCluster('grp', g, GROUPS),
      requestTimeoutMs: 500,
      deadlineMs: 30_000,
      backoff: { initialMs: 10, maxMs: 100 },
    });
    cleanups.push(() => client.close());
    for (const node of ['s1', 's2']) await client.mountSegment(`${node}-seg`, node, 1 << 30);
    loads.push(new Workload(client, { concurrency: 2, keyPrefix: `g${g}` }).start());
  }
  await Promise.all(loads.map((l) => l.until(() => l.acks.length >= 100, 30_000, '100 acks')));
  return loads;
}

// Every test twice: the members in the process's thread, and each in a worker thread of its own.
describe.each(['main', 'worker'])(
  'groups on the node side (real etcd and nats-server, node processes), --group-threads %s',
  (threads) => {
    it('3 processes x 4 groups: every group has one primary, on the process it prefers (each leads 1 or 2); /status lists every group, /metrics labels every series with its group', async () => {
      const { servers, fleet, expected } = await startGroupFleet(threads);
      const counts = IDS.map((id) => expected.filter((e) => e === id).length).sort();
      expect(counts).toEqual([1, 1, 2]);

      const status = await groupsStatus(fleet.nodes[0]!);
      expect(status.groupCount).toBe(GROUPS);
      expect(status.groups?.map((g) => g.cluster)).toEqual([
        'grp-g0',
        'grp-g1',
        'grp-g2',
        'grp-g3',
      ]);
      // One group's member answers as a node of one group does.
      const one = (await (await fetch(`${fleet.nodes[0]!.url}/status?group=2`)).json()) as {
        nodeId: string;
        role: string;
      };
      expect(one.nodeId).toBe('n1');
      // Any running role: a member may be campaigning for a moment when this is read (a full run
      // met 'candidate' here, a group's standby after a lease flap or a rebalance).
      expect(['primary', 'standby', 'candidate']).toContain(one.role);
      expect((await fetch(`${fleet.nodes[0]!.url}/status?group=4`)).status).toBe(400);
      expect(
        (await fetch(`${fleet.nodes[0]!.url}/admin/switchover`, { method: 'POST' })).status,
      ).toBe(400);
      const metrics = await (await fetch(`${fleet.nodes[0]!.url}/metrics`)).text();
      for (let g = 0; g < GROUPS; g++) expect(metrics).toContain(`group="${g}"`);
      expect(metrics.match(/^# TYPE understudy_node_info /gm)).toHaveLength(1);

      // A client with the cluster's groups reaches every group; a group's primary refuses a key
      // of another group (a client whose `groups` is not the cluster's), changing nothing.
      const grouped = await createClient({ servers: servers.nats, cluster: 'grp', groups: GROUPS });
      cleanups.push(() => grouped.close());
      await grouped.mountSegment('seg', 'storage-0', 1 << 30);
      const keys = Array.from({ length: GROUPS }, (_, g) => {
        for (let i = 0; ; i++) if (groupOfKey(`key-${i}`, GROUPS) === g) return `key-${i}`;
      });
      for (const key of keys) await grouped.putStart(key, 4096, 1);
      for (const key of keys) expect((await grouped.get(key)).key).toBe(key);
      const wrong = await createClient({
        servers: servers.nats,
        cluster: groupCluster('grp', 0, GROUPS),
      });
      cleanups.push(() => wrong.close());
      await expect(wrong.putStart(keys[1]!, 4096, 1)).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
      await expect(wrong.exists(keys[1]!)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      expect(await wrong.exists(keys[0]!)).toBe(true);

      // The operator's view: a group x node table; one group's table; a switchover of one group.
      const access = ['--cluster', 'grp', '--etcd', servers.etcd];
      const table = await runCli(['status', ...access]);
      expect(table.code, table.stderr).toBe(0);
      const lines = table.stdout.split('\n');
      expect(lines[0]).toBe('cluster grp: 4 groups (* holds the leader key, ? unreachable)');
      expect(lines[1]).toMatch(/^GROUP\s+NAME\s+n1\s+n2\s+n3$/);
      for (let g = 0; g < GROUPS; g++) {
        const cells = lines[2 + g]!.split(/\s{2,}/);
        expect(cells.slice(0, 2)).toEqual([String(g), `grp-g${g}`]);
        expect(cells[2 + IDS.indexOf(expected[g]!)]).toMatch(/^primary\* e\d+@\d+$/);
      }
      expect(table.stdout).toContain('primaries per node: ');
      const ofOne = await runCli(['status', ...access, '--group', '1', '--json']);
      expect(ofOne.code, ofOne.stderr).toBe(0);
      const rows = JSON.parse(ofOne.stdout) as { id: string; state: string }[];
      expect(rows.find((r) => r.state === 'primary')?.id).toBe(expected[1]);
      const noGroup = await runCli(['switchover', ...access]);
      expect(noGroup.code).toBe(2);
      expect(noGroup.stderr).toContain('cluster grp has 4 groups: name one with --group N (0..3)');
      const to = IDS.find((id) => id !== expected[1])!;
      const moved = await runCli(['switchover', ...access, '--group', '1', '--to', to, '--json']);
      expect(moved.code, moved.stderr).toBe(0);
      expect(JSON.parse(moved.stdout)).toMatchObject({ from: expected[1], to });
      // The group's preferred node is a live standby again: its primary hands the group back.
      await waitFor(
        'group 1 back on the process it prefers',
        () => primaries(fleet.nodes),
        (p) => p[1] === expected[1],
        30_000,
      );
      const listed = await runCli([
        'checkpoint',
        'list',
        '--cluster',
        'grp',
        '--nats',
        servers.nats,
        '--group',
        '1',
        '--json',
      ]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([]);
      // A checkpoint of group 1 only, written by its member (asked at ?group=1 of its process),
      // then read back and checked.
      const created = await runCli(['checkpoint', 'create', ...access, '--group', '1', '--json']);
      expect(created.code, created.stderr).toBe(0);
      const written = JSON.parse(created.stdout) as { name: string; appliedSeq: number };
      const nats = ['--cluster', 'grp', '--nats', servers.nats];
      const again = await runCli(['checkpoint', 'list', ...nats, '--group', '1', '--json']);
      expect((JSON.parse(again.stdout) as { name: string }[]).map((c) => c.name)).toEqual([
        written.name,
      ]);
      const other = await runCli(['checkpoint', 'list', ...nats, '--group', '2', '--json']);
      expect(JSON.parse(other.stdout)).toEqual([]);
      const verified = await runCli(['checkpoint', 'verify', ...nats, '--group', '1', '--json']);
      expect(verified.code, verified.stderr).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject([{ name: written.name, ok: true }]);
      const unlisted = await runCli(['checkpoint', 'list', ...nats]);
      expect(unlisted.code).toBe(2);
      expect(unlisted.stderr).toContain('cluster grp has several groups: name one with --group N');
      const unnamed = await runCli(['checkpoint', 'create', ...access]);
      expect(unnamed.code).toBe(2);
      expect(unnamed.stderr).toContain('cluster grp has 4 groups: name one with --group N (0..3)');
      // The inspector follows one group: every process's member of group 1, streamed (each
      // process answers /inspect/events?group=1), its primary on the process that leads it.
      await using inspect = await startCliServer([
        'inspect',
        ...access,
        '--group',
        '1',
        '--http',
        '127.0.0.1:0',
        '--interval',
        '500ms',
      ]);
      const { nodes } = await pageNodes(
        inspect.url,
        ({ nodes: views }) =>
          views.length === IDS.length &&
          views.every((v) => v.connected) &&
          views.some((v) => v.leader && v.id === expected[1] && v.state === 'primary'),
      );
      expect(nodes.map((v) => v.id).sort()).toEqual([...IDS].sort());
      // Without --group the page says why it shows no node.
      await using whole = await startCliServer([
        'inspect',
        ...access,
        '--http',
        '127.0.0.1:0',
        '--interval',
        '500ms',
      ]);
      const unnamedPage = await pageNodes(whole.url, (m) => m.problem !== undefined);
      expect(unnamedPage.problem).toBe(
        'cluster grp has 4 groups: follow one with --group N (0..3)',
      );
    }, 120_000);

    it("a node started with another --groups than the cluster's exits 2 with one log line naming both counts", async () => {
      const servers = await startServers();
      const client = new Etcd3({ hosts: [servers.etcd] });
      try {
        await claimGroupCount(client, 'grp', 4);
      } finally {
        client.close();
      }
      const node = await NodeHandle.start('n9', {
        cluster: 'grp',
        nats: [servers.nats],
        etcd: [servers.etcd],
        leaseTtlMs: TTL,
        extraArgs: ['--groups', '2', '--group-threads', threads],
      });
      cleanups.push(() => node.kill());
      expect(await node.exited(), node.stderr).toBe(2);
      const errors = node.logs.filter((l) => l['level'] === 50);
      expect(errors.map((l) => l.event)).toEqual(['groupsMismatch']);
      expect(errors[0]!.msg).toBe(
        'this node runs with --groups 2 (UNDERSTUDY_GROUPS), but cluster grp was created with 4 groups (recorded at /understudy/grp/groups): start it with --groups 4; the count of a cluster cannot change',
      );
      expect(node.stderr).toContain('start it with --groups 4');
    });

    it('kill -9 of one of 3 processes x 4 groups under load: every acknowledged write kept, the groups it led serve again within 2 TTL + 1 s, the other groups keep answering (no gap of TTL / 2)', async () => {
      const { servers, fleet, expected } = await startGroupFleet(threads);
      const loads = await writing(
        servers.nats,
        Array.from({ length: GROUPS }, (_, g) => g),
      );

      // The process leading two groups, if one does; else the first one leading any.
      const victimId =
        IDS.find((id) => expected.filter((e) => e === id).length === 2) ?? expected[0]!;
      const victim = fleet.node(victimId);
      const dead = expected.flatMap((id, g) => (id === victimId ? [g] : []));
      const others = expected.flatMap((id, g) => (id === victimId ? [] : [g]));
      // As long a window of calm before the kill: the machine's own noise, to compare with.
      const windowMs = TTL + 2000;
      const calmFrom = Date.now();
      await new Promise((r) => setTimeout(r, windowMs));
      const killedAt = Date.now();
      await victim.kill();
      const settleUntil = killedAt + windowMs;
      await new Promise((r) => setTimeout(r, Math.max(0, settleUntil - Date.now())));
      await Promise.all(loads.map((l) => l.stop()));

      const logs = await Promise.all(
        Array.from({ length: GROUPS }, (_, g) =>
          readLoggedEvents(servers.nats, groupCluster('grp', g, GROUPS)),
        ),
      );
      // A dead group's RTO: from the kill to its first ack after the new primary's fence (the last
      // EPOCH entry of its log), so a reply the old primary sent as it died is not counted.
      const rtos = dead.map((g) => {
        const fence = logs[g]!.filter((e) => e.event.op === 'EPOCH').at(-1)!;
        expect((fence.event as { nodeId?: string }).nodeId).not.toBe(victimId);
        const ack = loads[g]!.firstAckAfter(killedAt, fence.seq);
        expect(ack, `group ${g}: an ack after its new fence (seq ${fence.seq})`).toBeDefined();
        return ack!.ackedAt - killedAt;
      });
      const gaps = others.map((g) => longestGap(loads[g]!.acks, killedAt, settleUntil));
      const calm = others.map((g) => longestGap(loads[g]!.acks, calmFrom, killedAt));
      const holds = fleet.nodes.flatMap((n) =>
        n.logs
          .filter((l) => l.event === 'campaignHold' && l.time >= killedAt)
          .map((l) => `${n.id}/g${String(l['group'])} +${String(l['holdMs'])} ms`),
      );
      console.log(`campaign holds after the kill: ${holds.join(', ') || 'none'}`);
      console.log(
        `groups kill -9 of ${victimId} (led groups ${dead.join(',')}; TTL ${TTL} ms): RTO ${rtos.join(', ')} ms; ` +
          `the other groups' longest ack gap ${gaps.join(', ')} ms after the kill, ${calm.join(', ')} ms before it`,
      );
      // A long gap comes with what the processes logged during it: the next reader sees why.
      others.forEach((g, i) => {
        if (gaps[i]! < TTL / 4) return;
        const [from, to] = longestGapWindow(loads[g]!.acks, killedAt, settleUntil);
        const lines = fleet.nodes.flatMap((n) =>
          n.logs
            .filter((l) => l.time >= from && l.time <= to)
            .map(
              (l) =>
                `${n.id} +${l.time - from} ms ${l.event ?? l.msg}${typeof l['group'] === 'number' ? ` g${l['group']}` : ''}`,
            ),
        );
        console.log(
          `group ${g}: no ack for ${to - from} ms from kill+${from - killedAt} ms; logged then: ${lines.join('; ') || 'nothing'}`,
        );
      });
      for (let g = 0; g < GROUPS; g++) {
        expectLinearHistory(logs[g]!);
        expectAcksInLog(loads[g]!.acks, logs[g]!);
      }
      // The goal is TTL + 1 s, and the groups bench on a quiet machine meets it (1.6-2.1 s at TTL
      // 2 s). Here the whole suite shares 2 cores, and the two surviving processes host every
      // group's member in one thread each: runs took 3.1-3.3 s (the lease, a campaign hold of
      // TTL / 8, the promotion, the client's retry). What must hold: the groups come back within
      // one more TTL, not some time later.
      for (const rto of rtos) expect(rto).toBeLessThan(2 * TTL + 1000);
      // The goal is 100 ms; the groups bench measures it (not met: every member of a process runs
      // in its one thread). What must hold: the other groups never wait for the failover, nor move
      // because of it. This bound caught the way back handing a healthy group between the
      // survivors (746 ms and 1,013 ms without an ack, in full suites); gaps of the machine's own
      // noise in full suites on 2 cores were up to ~500 ms (the calm window before the kill).
      for (const gap of gaps) expect(gap).toBeLessThan(TTL / 2);
    });

    it(`one group's member blocked for 1.5 TTL on a process leading two groups: the other group it leads ${threads === 'worker' ? 'keeps answering (its own thread)' : 'stalls with it (one thread)'}; every acknowledged write kept`, async () => {
      const { servers, fleet, expected } = await startGroupFleet(threads, {
        UNDERSTUDY_TEST_HOOKS: '1',
      });
      const hostId = IDS.find((id) => expected.filter((e) => e === id).length === 2)!;
      const [blocked, other] = expected.flatMap((id, g) => (id === hostId ? [g] : []));
      const host = fleet.node(hostId);
      if (threads === 'worker') {
        // Each member says which thread it runs in: four, none the process's main thread (0).
        const started = host.logs.filter((l) => l.event === 'memberThreadStarted');
        const ids = new Set(started.map((l) => l['threadId']));
        expect(started).toHaveLength(GROUPS);
        expect(ids.size).toBe(GROUPS);
        expect(ids.has(0)).toBe(false);
      }
      const loads = await writing(servers.nats, [blocked!, other!]);
      const blockMs = (3 * TTL) / 2;
      const blockedAt = Date.now();
      const answer = await fetch(`${host.url}/test/block?group=${blocked}`, {
        method: 'POST',
        body: JSON.stringify({ ms: blockMs }),
        signal: AbortSignal.timeout(blockMs + 10_000),
      });
      expect(answer.status).toBe(200);
      const until = blockedAt + blockMs + 1000;
      await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
      await Promise.all(loads.map((l) => l.stop()));
      const gap = longestGap(loads[1]!.acks, blockedAt, until);
      console.log(
        `groups, --group-threads ${threads}: group ${blocked} of ${hostId} blocked ${blockMs} ms; ` +
          `group ${other!} (also led by ${hostId}) longest ack gap ${gap} ms`,
      );
      for (const g of [blocked!, other!]) {
        const log = await readLoggedEvents(servers.nats, groupCluster('grp', g, GROUPS));
        expectLinearHistory(log);
        expectAcksInLog(loads[g === blocked ? 0 : 1]!.acks, log);
      }
      // In its own thread the other group never waits for the blocked one (the bound is the
      // kill test's: the machine's own noise on 2 cores); in one thread it waits the block out,
      // or for its lease to pass to another process (TTL).
      if (threads === 'worker') expect(gap).toBeLessThan(TTL / 2);
      else expect(gap).toBeGreaterThanOrEqual(TTL / 2);
    });
  },
);

/** The longest time (ms) without an ack in [from, to], counting from the last ack before `from`. */
function longestGap(acks: readonly AckRecord[], from: number, to: number): number {
  const [start, end] = longestGapWindow(acks, from, to);
  return end - start;
}

/** Where the longest time without an ack in [from, to] starts and ends (see {@link longestGap}). */
function longestGapWindow(
  acks: readonly AckRecord[],
  from: number,
  to: number,
): readonly [number, number] {
  const times = acks.map((a) => a.ackedAt).sort((a, b) => a - b);
  const before = times.filter((t) => t < from).at(-1) ?? from;
  const within = [before, ...times.filter((t) => t >= from && t <= to), to];
  let longest: readonly [number, number] = [within[0]!, within[0]!];
  for (let i = 1; i < within.length; i++) {
    if (within[i]! - within[i - 1]! > longest[1] - longest[0])
      longest = [within[i - 1]!, within[i]!];
  }
  return longest;
}
