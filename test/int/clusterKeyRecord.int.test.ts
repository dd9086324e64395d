// The cluster's OpLog key id in a real etcd: the first claim records it, later claims read it,
// nodes claiming together agree on one.
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import {
  claimOplogKeyId,
  oplogKeyIdKey,
  readOplogKeyId,
} from '../../src/adapters/etcd/clusterKeyRecord.ts';
import { startEtcd } from '../harness/index.ts';

describe('the cluster OpLog key id record (real etcd)', () => {
  it('the first claim records its key id; later ones, whatever they claim, get the recorded one; claims at once agree', async () => {
    await using etcd = await startEtcd();
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    try {
      expect(await readOplogKeyId(client, 'c1')).toBeUndefined();
      expect(await claimOplogKeyId(client, 'c1', 'aaaaaaaaaaaaaaaa')).toEqual({
        clusterKeyId: 'aaaaaaaaaaaaaaaa',
        created: true,
      });
      expect(await claimOplogKeyId(client, 'c1', 'bbbbbbbbbbbbbbbb')).toEqual({
        clusterKeyId: 'aaaaaaaaaaaaaaaa',
        created: false,
      });
      expect(await client.get(oplogKeyIdKey('c1')).string()).toBe('aaaaaaaaaaaaaaaa');
      const together = await Promise.all(
        ['none', 'cccccccccccccccc', 'dddddddddddddddd'].map((id) =>
          claimOplogKeyId(client, 'c2', id),
        ),
      );
      expect(together.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(together.map((r) => r.clusterKeyId)).size).toBe(1);
    } finally {
      client.close();
    }
  });
});
