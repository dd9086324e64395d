/**
 * Deterministic simulation of a cluster of 2-3 groups (groupsWorld.ts): G independent sets of
 * real NodeRuntimes, each its own OpLog, elector and API bus, on one simulated clock, and
 * clients of the whole cluster (the grouped client: a member and a session per group). Faults,
 * in any group: crashes and restarts of its nodes (failovers in each group), graceful stops and
 * switchovers, pauses and resumes, partitions from etcd, NATS, both or the acks, and lost
 * replies. Every invariant of the one-group simulation is checked in each group
 * (simChecker.ts: after every step and at the end), and the history of every client call is
 * checked for linearizability in each group and whole (every key with its group's segment
 * operations). A second test measures, in simulated time, that one group's failover does not
 * delay the answers of the others.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UnderstudyClient } from '../../src/client/client.ts';
import { groupOfKey } from '../../src/domain/model/groups.ts';
import type { ApiInput } from '../harness/understudyModel.ts';
import { GroupsWorld } from './groupsWorld.ts';
import { prng } from './simWorld.ts';
import { LIVENESS_SLACK_MS, SIM_TTL_MS } from './simSettings.ts';

const SEGMENTS = 3;
const SEGMENT_BYTES = 1 << 20;
const KEYS = 12;

type Step =
  | {
      readonly k: 'cmd';
      readonly client: number;
      readonly op: ApiInput['op'];
      readonly key: number;
    }
  | { readonly k: 'crashPrimary' | 'stopPrimary' | 'switchover'; readonly group: number }
  | {
      readonly k: 'restart' | 'pause' | 'resume' | 'heal';
      readonly group: number;
      readonly n: number;
    }
  | {
      readonly k: 'cut';
      readonly group: number;
      readonly n: number;
      readonly what: 'etcd' | 'nats' | 'both' | 'acks';
    }
  | { readonly k: 'dropReplies'; readonly group: number; readonly count: number }
  | { readonly k: 'wait'; readonly ms: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('cmd' as const),
      client: fc.nat(1),
      op: fc.constantFrom('putStart', 'putEnd', 'putRevoke', 'remove', 'get', 'exists'),
      key: fc.nat(KEYS - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constantFrom('crashPrimary' as const, 'stopPrimary' as const, 'switchover' as const),
      group: fc.nat(2),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constantFrom('restart' as const, 'pause' as const, 'resume' as const, 'heal' as const),
      group: fc.nat(2),
      n: fc.nat(2),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('cut' as const),
      group: fc.nat(2),
      n: fc.nat(2),
      what: fc.constantFrom('etcd' as const, 'nats' as const, 'both' as const, 'acks' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('dropReplies' as const),
      group: fc.nat(2),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('wait' as const),
      ms: fc.integer({ min: 50, max: 2500 }),
    }),
  },
);

interface GroupsSchedule {
  readonly groups: number;
  readonly seed: number;
  readonly steps: readonly Step[];
}

const scheduleArb: fc.Arbitrary<GroupsSchedule> = fc.record({
  groups: fc.integer({ min: 2, max: 3 }),
  seed: fc.nat(1_000_000),
  steps: fc.array(stepArb, { minLength: 10, maxLength: 40 }),
});

function inputOf(op: ApiInput['op'], key: number): ApiInput {
  const k = `key-${key}`;
  if (op === 'putStart') return { op, key: k, size: 10 + key, replicaNum: 2 };
  if (op === 'mountSegment' || op === 'unmountSegment' || op === 'evict')
    throw new TypeError(`not a keyed op: ${op}`);
  return { op, key: k };
}

/** The index of group `g`'s primary, or undefined while it has none. */
function primaryOf(world: GroupsWorld, g: number): number | undefined {
  const slots = world.worlds[g]!.slots;
  const i = slots.findIndex((s) => !s.crashed && s.runtime?.role === 'primary');
  return i < 0 ? undefined : i;
}

async function start(world: GroupsWorld, clients: number): Promise<UnderstudyClient[]> {
  const elected = await world.runUntil(
    () => world.worlds.every((_, g) => primaryOf(world, g) !== undefined),
    10_000,
  );
  if (!elected) throw new Error('some group elected no primary at the start');
  const random = prng(world.options.seed);
  const out: UnderstudyClient[] = [];
  for (let i = 0; i < clients; i++) out.push(await world.client(random));
  for (let s = 1; s <= SEGMENTS; s++) {
    let done = false;
    void world
      .mount(out[0]!, 0, `s${s}`, `storage${s}`, SEGMENT_BYTES)
      .finally(() => (done = true));
    await world.runUntil(() => done, 10_000);
  }
  for (const w of world.worlds) w.checker.checkStep();
  return out;
}

async function runGroupsSchedule(s: GroupsSchedule): Promise<{ failovers: number; calls: number }> {
  const world = new GroupsWorld({ groups: s.groups, nodes: 3, seed: s.seed });
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>): void => {
    const settled = p.then(
      () => undefined,
      () => undefined,
    );
    pending.add(settled);
    void settled.then(() => pending.delete(settled));
  };
  try {
    const clients = await start(world, 2);
    for (const step of s.steps) {
      const g = 'group' in step ? step.group % s.groups : 0;
      const group = world.worlds[g]!;
      group.note(`step ${JSON.stringify(step)}`);
      switch (step.k) {
        case 'cmd':
          track(world.call(clients[step.client]!, step.client, inputOf(step.op, step.key)));
          break;
        case 'crashPrimary': {
          const p = primaryOf(world, g);
          if (p !== undefined) await group.crash(p);
          break;
        }
        case 'stopPrimary': {
          const p = primaryOf(world, g);
          if (p !== undefined) track(group.stop(p));
          break;
        }
        case 'switchover':
          track(group.switchover());
          break;
        case 'restart':
          group.restart(step.n);
          break;
        case 'pause':
          group.faults.pause(step.n);
          break;
        case 'resume':
          group.faults.resume(step.n);
          break;
        case 'heal':
          group.faults.heal(step.n);
          break;
        case 'cut':
          group.faults.cut(step.n, step.what);
          break;
        case 'dropReplies':
          group.faults.dropReplies(step.count);
          break;
        case 'wait':
          break;
      }
      await world.run(step.k === 'wait' ? step.ms : 30);
      for (const w of world.worlds) w.checker.checkStep();
    }
    for (const w of world.worlds) {
      w.note('faults end');
      w.endFaults();
      w.checker.checkStep();
    }
    for (const w of world.worlds) {
      const recovery = await w.checkLiveness();
      expect(recovery).toBeLessThanOrEqual(SIM_TTL_MS + LIVENESS_SLACK_MS);
    }
    await world.runUntil(() => pending.size === 0, 10_000);
    for (const w of world.worlds) {
      const lastSeq = (): number => w.store.bounds().lastSeq;
      await world.runUntil(() => w.live().every((n) => n.store.appliedSeq === lastSeq()), 5000, 50);
      w.checker.checkFinal();
      w.checker.checkHistory();
    }
    const whole = world.checkWholeHistory();
    if (whole !== '') throw new Error(`whole history: ${whole}`);
    return {
      failovers: world.worlds.reduce(
        (n, w) => n + w.logEntries().filter((e) => e.op === 'EPOCH').length - 1,
        0,
      ),
      calls: world.worlds.reduce((n, w) => n + w.history.ops.length, 0),
    };
  } catch (err) {
    const traces = world.worlds.map((w, g) => `group ${g}:\n${w.formatTrace()}`).join('\n');
    throw new Error(`${String(err)}\n${traces}`, { cause: err });
  } finally {
    await world.dispose();
  }
}

/** Runs (`UNDERSTUDY_SIM_RUNS` scales it like the one-group simulation's, a tenth of it). */
function groupRuns(): number {
  const runs = Number(process.env['UNDERSTUDY_SIM_RUNS'] ?? 200);
  return Math.max(5, Math.floor(runs / 10));
}

describe('groups simulation: 2-3 groups on one clock', () => {
  it('every invariant holds in each group, and the whole history is linearizable', async () => {
    const stats: { failovers: number; calls: number }[] = [];
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (s) => {
        stats.push(await runGroupsSchedule(s));
      }),
      { numRuns: groupRuns() },
    );
    console.log(
      `groups simulation: ${stats.length} schedules passed; ${stats.reduce((n, s) => n + s.failovers, 0)} failovers; ${stats.reduce((n, s) => n + s.calls, 0)} client calls checked linearizable`,
    );
    expect(stats.filter((s) => s.failovers > 0).length).toBeGreaterThan(0);
  }, 600_000);

  it('one group failing over does not delay the answers of the others', async () => {
    const G = 3;
    const world = new GroupsWorld({ groups: G, nodes: 3, seed: 7 });
    try {
      const [client] = await start(world, 1);
      const answers: number[][] = Array.from({ length: G }, () => []);
      let stop = false;
      const keysOf = (g: number): (() => string) => {
        let i = 0;
        return () => {
          for (;;) {
            const key = `steady-${i++}`;
            if (groupOfKey(key, G) === g) return key;
          }
        };
      };
      // One caller per group: a put, its answer, 10 ms, the next put.
      const loops = Array.from({ length: G }, async (_, g) => {
        const next = keysOf(g);
        while (!stop) {
          const out = await world.call(client!, g, {
            op: 'putStart',
            key: next(),
            size: 10,
            replicaNum: 2,
          });
          if (out?.ok === true) answers[g]!.push(world.sim.now());
          await new Promise<void>((resolve) => world.sim.setTimeout(resolve, 10));
        }
      });
      await world.run(1000);
      const crashedAt = world.sim.now();
      const primary = primaryOf(world, 0);
      if (primary === undefined) throw new Error('group 0 has no primary');
      await world.worlds[0]!.crash(primary);
      await world.runUntil(
        () => answers[0]!.some((t) => t > crashedAt),
        SIM_TTL_MS + LIVENESS_SLACK_MS,
      );
      const recoveredAt = answers[0]!.find((t) => t > crashedAt) ?? Infinity;
      await world.run(500);
      stop = true;
      await world.runUntil(() => false, 1000);
      await Promise.all(loops);
      const longestGap = (times: readonly number[], from: number, to: number): number => {
        const inside = [from, ...times.filter((t) => t > from && t < to), to];
        return Math.max(...inside.slice(1).map((t, i) => t - inside[i]!));
      };
      const gap0 = longestGap(answers[0]!, crashedAt, recoveredAt);
      const others = [1, 2].map((g) => longestGap(answers[g]!, crashedAt, recoveredAt));
      console.log(
        `groups failover: group 0 answered again ${recoveredAt - crashedAt} ms after its primary crashed; longest gap between answers of groups 1 and 2 meanwhile: ${others.join(', ')} ms`,
      );
      expect(recoveredAt).toBeLessThan(Infinity);
      expect(gap0).toBeGreaterThanOrEqual(SIM_TTL_MS / 2); // the failover did stall group 0
      for (const gap of others) expect(gap).toBeLessThan(100);
      for (const w of world.worlds) {
        w.checker.checkStep();
        w.checker.checkHistory();
      }
      expect(world.checkWholeHistory()).toBe('');
      // The whole-history check finds what it must: a key answered by another group, and a
      // read that contradicts an acknowledged put.
      const put = world.worlds[1]!.history.ops.find(
        (op) => op.input.op === 'putStart' && op.output?.ok === true,
      )!;
      const key = (put.input as { key: string }).key;
      const at = world.sim.now() + 1;
      world.worlds[2]!.history.add({ ...put, client: 8 });
      expect(world.checkWholeHistory()).toContain(`${key} was sent to group 2`);
      world.worlds[2]!.history.ops.pop();
      world.worlds[1]!.history.add({
        client: 9,
        call: at,
        return: at + 1,
        input: { op: 'exists', key },
        output: { ok: true, exists: false },
      });
      expect(world.checkWholeHistory()).toContain('not linearizable');
    } finally {
      await world.dispose();
    }
  }, 120_000);
});
