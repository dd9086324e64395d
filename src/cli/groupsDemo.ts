// `understudy demo --groups G` (G > 1): the same local cluster with the keyspace in G groups,
// each its own primary spread over the three processes; a write load through a grouped client;
// kill -9 of the process leading the most groups; then, per group, who led before and after,
// when it answered again, and the longest gap between its acknowledgements around the kill:
// only the dead process's groups fail over, the others keep answering.
import { groupCluster } from '../api/subjects.ts';
import type { UnderstudyClient } from '../client/client.ts';
import { createClient } from '../client/nats.ts';
import { groupOfKey } from '../domain/model/groups.ts';
import { preferredNodes } from '../domain/model/groupPreference.ts';
import type { NodeFleet, NodeHandle } from '../tools/localCluster/nodeFleet.ts';
import { readLoggedEvents } from '../tools/localCluster/readLoggedEvents.ts';
import { longestAckGap, Workload, type AckRecord } from '../tools/localCluster/workload.ts';

export interface GroupsDemoSettings {
  readonly groups: number;
  readonly beforeMs: number;
  readonly afterMs: number;
  readonly concurrency: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Which node leads each group now (undefined: none), read from every live node's `/status`. */
async function leaders(fleet: NodeFleet, groups: number): Promise<(string | undefined)[]> {
  const led: (string | undefined)[] = Array.from({ length: groups }, () => undefined);
  await Promise.all(
    fleet.nodes
      .filter((n) => n.running)
      .map(async (n) => {
        const res = await fetch(`${n.url}/status`, { signal: AbortSignal.timeout(2000) }).catch(
          () => undefined,
        );
        const body = (await res?.json().catch(() => undefined)) as
          { groups?: { group: number; role: string }[] } | undefined;
        for (const m of body?.groups ?? []) if (m.role === 'primary') led[m.group] = n.id;
      }),
  );
  return led;
}

/** The demo's client (of `groups` groups), with two segments mounted on each of three storage nodes. */
export async function demoClient(
  natsUrl: string,
  cluster: string,
  groups: number,
  cleanups: Array<() => Promise<unknown>>,
): Promise<UnderstudyClient> {
  const client = await createClient({
    servers: natsUrl,
    cluster,
    groups,
    requestTimeoutMs: 500,
    deadlineMs: 30_000,
    backoff: { initialMs: 10, maxMs: 100 },
  });
  cleanups.push(() => client.close());
  for (const node of ['s1', 's2', 's3']) {
    for (const n of [0, 1]) await client.mountSegment(`${node}-seg${n}`, node, 1 << 30);
  }
  return client;
}

/** Runs the demo on `fleet` (started with `--groups`); the exit code (1: a write was lost). */
export async function runGroupsDemo(
  fleet: NodeFleet,
  natsUrl: string,
  cluster: string,
  options: GroupsDemoSettings,
  say: (line: string) => void,
  cleanups: Array<() => Promise<unknown>>,
): Promise<number> {
  const { groups } = options;
  // Each group's primary on the process it prefers (they move there by switchover).
  const preferred = preferredNodes(
    groups,
    fleet.nodes.map((n) => n.id),
  );
  let before = await leaders(fleet, groups);
  for (let waited = 0; before.some((l, g) => l !== preferred[g]); waited += 200) {
    if (waited > 60_000)
      throw new Error(`the groups' primaries did not spread: ${before.join(', ')}`);
    await sleep(200);
    before = await leaders(fleet, groups);
  }
  for (const n of fleet.nodes) say(`node ${n.id}     ${n.url}  pid ${n.pid ?? '?'}`);
  say(`${groups} groups: ${before.map((id, g) => `g${g} led by ${id ?? '?'}`).join(', ')}`);
  const client = await demoClient(natsUrl, cluster, groups, cleanups);
  // One load per group: writers of a dead group's keys wait out its failover without holding
  // up the writers of the others.
  const loads = Array.from({ length: groups }, (_, g) =>
    new Workload(client, {
      concurrency: options.concurrency,
      keyPrefix: `g${g}`,
      keyFilter: (key) => groupOfKey(key, groups) === g,
    }).start(),
  );
  say(
    `  write load: ${options.concurrency} writers per group for ${options.beforeMs} ms, then kill -9`,
  );
  await sleep(options.beforeMs);

  // The process leading the most groups.
  const count = (id: string): number => before.filter((l) => l === id).length;
  const victim = fleet.nodes.reduce<NodeHandle>(
    (best, n) => (count(n.id) > count(best.id) ? n : best),
    fleet.nodes[0]!,
  );
  const dead = new Set(before.flatMap((id, g) => (id === victim.id ? [g] : [])));
  const killedAt = Date.now();
  await victim.kill();
  say(
    `  kill -9 ${victim.id} (pid ${victim.pid ?? '?'}), which led ${[...dead].map((g) => `g${g}`).join(', ')}`,
  );
  // The first write sent after the kill and acknowledged: a reply the dead process sent before
  // it died does not count as its group answering again.
  const firstAfter = (g: number): AckRecord | undefined =>
    loads[g]!.acks.find((a) => a.sentAt > killedAt);
  for (const g of dead) {
    await loads[g]!.until(() => firstAfter(g) !== undefined, 60_000, `group ${g} serving`);
  }
  const back = Math.max(...[...dead].map((g) => firstAfter(g)!.ackedAt));
  await sleep(options.afterMs);
  await Promise.all(loads.map((l) => l.stop()));
  const after = await leaders(fleet, groups);

  say('');
  say('group  led before  led after  first ack after the kill  longest ack gap (kill .. all back)');
  let lost = 0;
  let othersGap = 0;
  for (let g = 0; g < groups; g++) {
    const acks = loads[g]!.acks;
    const first = firstAfter(g);
    const gap = longestAckGap(acks, killedAt, back);
    if (!dead.has(g)) othersGap = Math.max(othersGap, gap);
    say(
      `g${String(g).padEnd(5)}${(before[g] ?? '?').padEnd(12)}${(after[g] ?? '?').padEnd(11)}${`${first === undefined ? '?' : first.ackedAt - killedAt} ms`.padEnd(26)}${gap} ms${dead.has(g) ? '  (failed over)' : ''}`,
    );
    const log = await readLoggedEvents(natsUrl, groupCluster(cluster, g, groups));
    const bySeq = new Map(log.map((l) => [l.seq, l]));
    for (const ack of acks) {
      const logged = bySeq.get(ack.seq);
      const key = logged !== undefined && 'key' in logged.event ? logged.event.key : undefined;
      if (key !== ack.key) lost++;
    }
  }
  say('');
  const acked = loads.reduce((n, l) => n + l.acks.length, 0);
  say(
    `the other groups' longest gap between acknowledgements while ${victim.id}'s failed over: ${othersGap} ms`,
  );
  say(`acknowledged writes: ${acked}; lost: ${lost}`);
  return lost === 0 ? 0 : 1;
}
