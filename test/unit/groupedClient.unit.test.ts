import { describe, expect, it } from 'vitest';
import { MemoryApiBus, type BusRequest } from '../../src/adapters/memory/memoryApiTransport.ts';
import { createApiHandler } from '../../src/api/handler.ts';
import { groupCluster } from '../../src/api/subjects.ts';
import { ApiError } from '../../src/api/wire.ts';
import { GroupFanOutError } from '../../src/client/groupedClient.ts';
import { createClient, type ClientOptions, type UnderstudyClient } from '../../src/client/index.ts';
import { groupOfKey } from '../../src/domain/model/groups.ts';
import { segmentSlice } from '../../src/domain/model/segmentSlices.ts';
import { getObject, getSegment } from '../../src/domain/model/state.ts';
import type { ApiListener } from '../../src/ports/apiTransport.ts';
import { FoldingService, ManualClock } from '../fixtures/clientFixtures.ts';

// A client of a cluster of G groups over the in-memory transport: one primary in miniature per
// group, each listening on its group's cluster name (`c1-g<g>`).

const G = 3;
const SEGMENT = 3 << 20;

interface GroupsRig {
  readonly clock: ManualClock;
  readonly bus: MemoryApiBus;
  readonly services: FoldingService[];
  readonly client: UnderstudyClient;
  /** Every request the bus carried: its group's cluster name and its decoded body. */
  readonly requests: { cluster: string; op: string; body: Record<string, unknown> }[];
  listen(group: number): Promise<ApiListener>;
}

async function rig(options: Partial<ClientOptions> = {}): Promise<GroupsRig> {
  const clock = new ManualClock();
  const requests: GroupsRig['requests'] = [];
  const bus = new MemoryApiBus({
    clock,
    replyFate: (r: BusRequest) => {
      const text = new TextDecoder().decode(r.body);
      requests.push({
        cluster: r.cluster,
        op: r.op,
        body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
      });
      return { kind: 'deliver' };
    },
  });
  const services = Array.from({ length: G }, () => new FoldingService());
  const client = await createClient({
    cluster: 'c1',
    groups: G,
    transportFor: (cluster) => bus.clientTransport(cluster),
    clock,
    random: () => 0.5,
    requestTimeoutMs: 500,
    deadlineMs: 5000,
    backoff: { initialMs: 100, maxMs: 400 },
    coalesce: false,
    ...options,
  });
  const listen = (group: number) =>
    bus
      .serverTransport(groupCluster('c1', group, G))
      .listen(createApiHandler(services[group] as FoldingService));
  return { clock, bus, services, client, requests, listen };
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected a rejection');
}

/** Keys spread over the groups: `per` keys of each group, in an interleaved order. */
function keysOfEveryGroup(per: number): string[] {
  const byGroup: string[][] = Array.from({ length: G }, () => []);
  for (let i = 0; byGroup.some((keys) => keys.length < per); i++) {
    const key = `key-${i}`;
    const keys = byGroup[groupOfKey(key, G)] as string[];
    if (keys.length < per) keys.push(key);
  }
  const out: string[] = [];
  for (let k = 0; k < per; k++) for (const keys of byGroup) out.push(keys[k] as string);
  return out;
}

async function mountAll(r: GroupsRig): Promise<void> {
  for (const node of ['s1', 's2', 's3'])
    await r.clock.run(r.client.mountSegment(`${node}-seg`, node, SEGMENT));
}

describe('client of a cluster of several groups', () => {
  it('mounts a slice of the segment in every group, and routes each key to its group', async () => {
    const r = await rig();
    for (let g = 0; g < G; g++) await r.listen(g);
    const ack = await r.clock.run(r.client.mountSegment('s1-seg', 's1', SEGMENT));
    expect(ack).toEqual({ seq: 1, groups: [{ seq: 1 }, { seq: 1 }, { seq: 1 }] });
    await r.clock.run(r.client.mountSegment('s2-seg', 's2', SEGMENT));
    r.services.forEach((service, g) => {
      const slice = segmentSlice(SEGMENT, g, G);
      expect(getSegment(service.state, 's1-seg')).toMatchObject({ size: slice.size });
      expect(getSegment(service.state, 's1-seg')?.base ?? 0).toBe(slice.base);
    });
    for (const key of keysOfEveryGroup(3)) {
      const placement = await r.clock.run(r.client.putStart(key, 1000, 2));
      const group = groupOfKey(key, G);
      const slice = segmentSlice(SEGMENT, group, G);
      for (const replica of placement.replicas) {
        expect(replica.offset).toBeGreaterThanOrEqual(slice.base);
        expect(replica.offset + replica.length).toBeLessThanOrEqual(slice.base + slice.size);
      }
      r.services.forEach((service, g) =>
        expect(getObject(service.state, key) !== undefined).toBe(g === group),
      );
      await r.clock.run(r.client.putEnd(key));
      expect(await r.clock.run(r.client.exists(key))).toBe(true);
      expect((await r.clock.run(r.client.get(key))).key).toBe(key);
    }
    // Every keyed request went to its key's group, and only there.
    for (const request of r.requests.filter((q) => typeof q.body['key'] === 'string')) {
      const key = request.body['key'] as string;
      expect(request.cluster).toBe(groupCluster('c1', groupOfKey(key, G), G));
    }
  });

  it('splits a batch by group and answers in the caller order', async () => {
    const r = await rig();
    for (let g = 0; g < G; g++) await r.listen(g);
    await mountAll(r);
    const keys = keysOfEveryGroup(4);
    await r.clock.run(r.client.putStart(keys[4] as string, 10, 1)); // exists before the batch
    const items = keys.map((key) => ({ key, size: 10, replicaNum: 1 }));
    items.splice(7, 0, { key: keys[2] as string, size: 10, replicaNum: 1 }); // twice in the batch
    const results = await r.clock.run(r.client.putStartBatch(items));
    expect(results).toHaveLength(items.length);
    results.forEach((result, i) => {
      const key = items[i]?.key;
      if (i === 4 || i === 7) {
        expect(result.ok ? 'placed' : result.error.code).toBe('OBJECT_EXISTS');
      } else expect(result.ok ? result.result.key : result.error.code).toBe(key);
    });
    // One request per group, each with that group's items only.
    const batches = r.requests.filter((q) => q.op === 'putStartBatch');
    expect(batches.map((q) => q.cluster).sort()).toEqual(['c1-g0', 'c1-g1', 'c1-g2']);
    const ends = await r.clock.run(r.client.putEndBatch([...keys].reverse()));
    expect(ends.map((e) => e.ok)).toEqual(keys.map(() => true));
  });

  it('keeps one session per group: one id, each group its own request numbers', async () => {
    const r = await rig();
    for (let g = 0; g < G; g++) await r.listen(g);
    await mountAll(r);
    for (const key of keysOfEveryGroup(2)) await r.clock.run(r.client.putStart(key, 10, 1));
    const writes = r.requests.filter((q) => q.op === 'putStart' || q.op === 'mountSegment');
    const sessions = writes.map((q) => q.body['session'] as { id: string; requestNo: number });
    expect(new Set(sessions.map((s) => s.id))).toEqual(new Set([r.client.sessionId]));
    for (let g = 0; g < G; g++) {
      const numbers = writes
        .map((q, i) => ({ cluster: q.cluster, no: sessions[i]?.requestNo }))
        .filter((w) => w.cluster === groupCluster('c1', g, G))
        .map((w) => w.no);
      expect(numbers).toEqual([1, 2, 3, 4, 5]); // 3 mounts and 2 puts, numbered by the group
    }
  });

  it('a group without a primary delays only its own keys', async () => {
    const r = await rig();
    for (let g = 0; g < G; g++) await r.listen(g);
    await mountAll(r);
    // Group 1 loses its primary: its calls wait; the others answer without the clock moving.
    r.services[1]!.notPrimaryLeft = Number.MAX_SAFE_INTEGER;
    const keys = keysOfEveryGroup(2);
    const stuck = keys.filter((k) => groupOfKey(k, G) === 1);
    const waiting = stuck.map((key) =>
      r.client.putStart(key, 10, 1).then(
        () => 'placed',
        (e: ApiError) => e.code,
      ),
    );
    const start = r.clock.now();
    for (const key of keys.filter((k) => groupOfKey(k, G) !== 1)) {
      await r.clock.run(r.client.putStart(key, 10, 1));
    }
    expect(r.clock.now()).toBe(start);
    r.services[1]!.notPrimaryLeft = 0; // the group's failover ends
    expect(await r.clock.run(Promise.all(waiting))).toEqual(stuck.map(() => 'placed'));
  });

  it('a mount some groups miss fails naming them; calling it again finishes it', async () => {
    const r = await rig();
    await r.listen(0);
    await r.listen(1); // group 2 has no primary
    const error = await rejection(r.clock.run(r.client.mountSegment('s1-seg', 's1', SEGMENT)));
    expect(error).toBeInstanceOf(GroupFanOutError);
    expect(error.name).toBe('GroupFanOutError');
    expect((error as GroupFanOutError).appliedGroups).toEqual([0, 1]);
    expect(error.code).toBe('NO_RESPONDERS');
    expect(error.details).toEqual({ appliedGroups: [0, 1], failedGroups: [2] });
    expect(getSegment(r.services[0]!.state, 's1-seg')).toBeDefined();
    expect(getSegment(r.services[2]!.state, 's1-seg')).toBeUndefined();
    await r.listen(2);
    const ack = await r.clock.run(r.client.mountSegment('s1-seg', 's1', SEGMENT));
    expect(ack).toEqual({ seq: 1, groups: [null, null, { seq: 1 }] });
    // Mounted everywhere now: a third call is refused as with one group.
    expect(
      (await rejection(r.clock.run(r.client.mountSegment('s1-seg', 's1', SEGMENT)))).code,
    ).toBe('SEGMENT_EXISTS');
    // Unmount alike.
    expect(await r.clock.run(r.client.unmountSegment('s1-seg'))).toMatchObject({ seq: 2 });
    expect((await rejection(r.clock.run(r.client.unmountSegment('s1-seg')))).code).toBe(
      'SEGMENT_NOT_FOUND',
    );
  });

  it('refuses a segment smaller than the group count, changing nothing', async () => {
    const r = await rig();
    for (let g = 0; g < G; g++) await r.listen(g);
    const error = await rejection(r.client.mountSegment('tiny', 's1', G - 1));
    expect([error.code, error.field, error.limit]).toEqual(['INVALID_ARGUMENT', 'size', G]);
    expect(r.requests).toEqual([]);
  });

  it("asks transportFor for the groups' cluster names only (regression)", async () => {
    const bus = new MemoryApiBus();
    const asked: string[] = [];
    const client = await createClient({
      cluster: 'c1',
      groups: 2,
      transportFor: (cluster) => {
        asked.push(cluster);
        if (!/^c1-g[01]$/.test(cluster)) throw new RangeError(`no group ${cluster}`);
        return bus.clientTransport(cluster);
      },
    });
    expect(asked).toEqual(['c1-g0', 'c1-g1']);
    await client.close();
  });

  it("a client whose groups is not the cluster's is refused by primaries that check keys", async () => {
    const r = await rig({ groups: 2 }); // the cluster has 3
    for (let g = 0; g < G; g++) {
      await r.bus
        .serverTransport(groupCluster('c1', g, G))
        .listen(createApiHandler(r.services[g]!, { group: { group: g, groups: G } }));
    }
    const misrouted = keysOfEveryGroup(4).find((key) => groupOfKey(key, 2) !== groupOfKey(key, G))!;
    const error = await rejection(r.clock.run(r.client.putStart(misrouted, 10, 1)));
    expect([error.code, error.field]).toEqual(['BAD_REQUEST', 'key']);
    expect(error.message).toContain(`must be the cluster's (${G})`);
    const batch = await rejection(r.clock.run(r.client.putEndBatch([misrouted])));
    expect(batch.code).toBe('BAD_REQUEST');
    expect(r.services.every((s) => s.state.appliedSeq === 0)).toBe(true); // nothing changed
  });

  it('refuses a single transport for several groups', async () => {
    const bus = new MemoryApiBus();
    await expect(
      createClient({ cluster: 'c1', groups: 2, transport: bus.clientTransport('c1') }),
    ).rejects.toThrow(/transportFor/);
  });
});
