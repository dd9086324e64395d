import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsApiServerTransport } from '../../src/adapters/nats/natsApiTransport.ts';
import { createApiHandler } from '../../src/api/handler.ts';
import { groupCluster } from '../../src/api/subjects.ts';
import { ApiError } from '../../src/api/wire.ts';
import { createClient } from '../../src/client/index.ts';
import { groupOfKey } from '../../src/domain/model/groups.ts';
import { segmentSlice } from '../../src/domain/model/segmentSlices.ts';
import { getObject, getSegment } from '../../src/domain/model/state.ts';
import { FoldingService } from '../fixtures/clientFixtures.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';

// The client of a cluster of 3 groups over real NATS: one connection, one transport per group
// (`<cluster>-g<g>` subjects, each group's term subjects), each group's primary in miniature
// serving its own subjects and checking that it owns every key it is sent.

const G = 3;

describe('grouped client over NATS', () => {
  let nats: NatsServerHandle;
  const connections: NatsConnection[] = [];

  beforeAll(async () => {
    nats = await startNats({ jetstream: false });
  });
  afterAll(async () => {
    for (const nc of connections) if (!nc.isClosed()) await nc.close();
    await nats?.[Symbol.asyncDispose]();
  });

  it('routes every key to its group, fans mounts out as slices, and closes its one connection', async () => {
    const services = Array.from({ length: G }, () => new FoldingService());
    for (let g = 0; g < G; g++) {
      const nc = await connect({ servers: nats.url });
      connections.push(nc);
      await createNatsApiServerTransport({ nc, cluster: groupCluster('gc', g, G) }).listen(
        createApiHandler(services[g]!, { group: { group: g, groups: G } }),
        { epoch: 1 + g },
      );
    }
    const client = await createClient({ servers: nats.url, cluster: 'gc', groups: G });
    for (const node of ['a', 'b']) {
      const ack = await client.mountSegment(`${node}-seg`, node, 3000);
      expect(ack).toMatchObject({ seq: expect.any(Number) as number });
    }
    services.forEach((service, g) => {
      const segment = getSegment(service.state, 'a-seg');
      expect({ base: segment?.base ?? 0, size: segment?.size }).toEqual(segmentSlice(3000, g, G));
    });
    const keys = Array.from({ length: 30 }, (_, i) => `nats-key-${i}`);
    const placed = await client.putStartBatch(
      keys.map((key) => ({ key, size: 10, replicaNum: 2 })),
    );
    expect(placed.map((p) => (p.ok ? p.result.key : p.error.code))).toEqual(keys);
    for (const key of keys) {
      const owner = groupOfKey(key, G);
      services.forEach((service, g) =>
        expect(getObject(service.state, key) !== undefined).toBe(g === owner),
      );
      await client.putEnd(key);
      expect((await client.get(key)).replicas.every((r) => r.status === 'complete')).toBe(true);
    }
    expect(new Set(keys.map((k) => groupOfKey(k, G))).size).toBe(G);
    await client.close();
    const closed = await client.exists(keys[0]!).catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(ApiError);
    expect((closed as ApiError).code).toBe('CLOSED');
  });
});
