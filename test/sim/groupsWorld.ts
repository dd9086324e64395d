/**
 * A cluster of G groups in the simulation: G {@link SimWorld}s (each one group: its own nodes,
 * OpLog, elector, API bus, checkpoints and checker) on one {@link SimClock}, and clients of the
 * whole cluster (the grouped client, one member per group, each over its group's bus). Each
 * world's invariants are its group's; the client history is kept per group (each world checks
 * its own) and checked whole by {@link GroupsWorld.checkWholeHistory}.
 */
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { groupCluster } from '../../src/api/subjects.ts';
import type { GroupsAck } from '../../src/client/groupedClient.ts';
import { ApiError, type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import { groupOfKey } from '../../src/domain/model/groups.ts';
import { segmentSlice } from '../../src/domain/model/segmentSlices.ts';
import { checkPartitions, type Partition } from '../harness/linearizability.ts';
import {
  understudyModel,
  type ApiInput,
  type ApiOperation,
  type ApiOutput,
} from '../harness/understudyModel.ts';
import { formatFailures } from '../harness/history.ts';
import { SIM_CLUSTER, START_MS } from './simSettings.ts';
import { SimWorld } from './simWorld.ts';

export interface GroupsWorldOptions {
  readonly groups: number;
  /** Nodes of each group. */
  readonly nodes: number;
  readonly seed: number;
}

/** The cluster of several groups (see the file's doc). */
export class GroupsWorld {
  readonly sim = new SimClock(START_MS);
  readonly worlds: SimWorld[] = [];
  readonly #clients: UnderstudyClient[] = [];

  constructor(readonly options: GroupsWorldOptions) {
    for (let g = 0; g < options.groups; g++) {
      this.worlds.push(
        new SimWorld({
          nodes: options.nodes,
          seed: options.seed * 31 + g,
          sim: this.sim,
          // A turn of any group runs every group's per-turn checks.
          onTurn: () => this.worlds.forEach((w, i) => i !== g && w.checkTurn()),
        }),
      );
    }
  }

  get groups(): number {
    return this.options.groups;
  }

  /** Advances the one clock by `ms` (every group's timers fire; every group's checks run). */
  run(ms: number): Promise<void> {
    return (this.worlds[0] as SimWorld).run(ms);
  }

  async runUntil(done: () => boolean, limitMs: number, stepMs = 20): Promise<boolean> {
    const until = this.sim.now() + limitMs;
    while (!done()) {
      if (this.sim.now() >= until) return false;
      await this.run(stepMs);
    }
    return true;
  }

  /** A client of every group (the grouped client over each group's bus). */
  async client(random: () => number): Promise<UnderstudyClient> {
    const byCluster = new Map(
      this.worlds.map((w, g) => [groupCluster('groups', g, this.groups), w] as const),
    );
    const sessionId = Array.from({ length: 4 }, () =>
      Math.floor(random() * 2 ** 32)
        .toString(16)
        .padStart(8, '0'),
    ).join('');
    const client = await createClient({
      cluster: 'groups',
      groups: this.groups,
      // Each group's bus serves its world's cluster name.
      transportFor: (cluster) => {
        const world = byCluster.get(cluster);
        if (world === undefined) throw new RangeError(`no group ${cluster}`);
        return world.bus.clientTransport(SIM_CLUSTER);
      },
      clock: this.sim,
      requestTimeoutMs: 400,
      deadlineMs: 6000,
      random,
      sessionId,
    });
    this.#clients.push(client);
    return client;
  }

  /** A keyed call, recorded in its key's group's history; never rejects. */
  call(
    client: UnderstudyClient,
    clientId: number,
    input: ApiInput,
  ): Promise<ApiOutput | undefined> {
    if (input.op === 'mountSegment' || input.op === 'unmountSegment' || input.op === 'evict')
      throw new TypeError('use mount() for segment operations');
    const world = this.worlds[groupOfKey(input.key, this.groups)] as SimWorld;
    return world.history.call(client, clientId, input);
  }

  /**
   * Mounts a segment through `client` (a fan-out to every group) and records in each group's
   * history the mount of that group's slice with that group's answer.
   */
  async mount(
    client: UnderstudyClient,
    clientId: number,
    segmentId: string,
    nodeId: string,
    size: number,
  ): Promise<void> {
    const call = this.sim.now();
    let acks: readonly ({ seq: number } | null)[] | undefined;
    let refusal: string | undefined;
    try {
      acks = ((await client.mountSegment(segmentId, nodeId, size)) as GroupsAck).groups;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'SEGMENT_EXISTS') refusal = err.code;
    }
    this.worlds.forEach((world, g) => {
      const ack = acks?.[g];
      const output: ApiOutput | undefined =
        refusal !== undefined
          ? { ok: false, code: refusal }
          : ack
            ? { ok: true, seq: ack.seq }
            : undefined;
      world.history.add({
        client: clientId,
        call,
        return: output === undefined ? Infinity : this.sim.now(),
        input: {
          op: 'mountSegment',
          segmentId,
          nodeId,
          size: segmentSlice(size, g, this.groups).size,
        },
        output,
      });
    });
  }

  /**
   * Every keyed call went to its key's group only, and the whole history of all groups is
   * linearizable: each key with its group's segment operations. Returns the failures' report
   * ('' when none).
   */
  checkWholeHistory(): string {
    const partitions: Partition<ApiInput, ApiOutput>[] = [];
    const problems: string[] = [];
    this.worlds.forEach((world, g) => {
      const segmentOps: ApiOperation[] = [];
      const byKey = new Map<string, ApiOperation[]>();
      for (const op of world.checker.checkedOps()) {
        if (op.input.op === 'mountSegment' || op.input.op === 'unmountSegment') {
          segmentOps.push(op);
          continue;
        }
        const key = op.input.key;
        if (groupOfKey(key, this.groups) !== g) problems.push(`${key} was sent to group ${g}`);
        const list = byKey.get(key) ?? [];
        list.push(op);
        byKey.set(key, list);
      }
      for (const [key, ops] of byKey)
        partitions.push({
          name: `group ${g} key ${JSON.stringify(key)}`,
          ops: [...segmentOps, ...ops],
        });
    });
    const failures = checkPartitions(understudyModel, partitions);
    return [...problems, failures.length > 0 ? formatFailures(failures) : '']
      .filter((t) => t !== '')
      .join('\n');
  }

  /** Stops every group's nodes and every client. */
  async dispose(): Promise<void> {
    for (const client of this.#clients) await client.close();
    for (const world of this.worlds) await world.dispose();
  }
}
