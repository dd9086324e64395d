// The cluster's group count in a real etcd: the first claim records it, later claims read it,
// nodes claiming together agree on one, and a value that is not a count is refused.
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import {
  claimGroupCount,
  GroupCountRecordError,
  groupsKey,
  readGroupCount,
} from '../../src/adapters/etcd/clusterGroupsRecord.ts';
import { startEtcd } from '../harness/index.ts';

describe('the cluster group count record (real etcd)', () => {
  it('the first claim records its count; later ones, whatever they claim, get the recorded one; claims at once agree', async () => {
    await using etcd = await startEtcd();
    const client = new Etcd3({ hosts: [etcd.endpoint] });
    try {
      expect(await readGroupCount(client, 'c1')).toBeUndefined();
      expect(await claimGroupCount(client, 'c1', 4)).toEqual({ clusterGroups: 4, created: true });
      expect(await claimGroupCount(client, 'c1', 1)).toEqual({ clusterGroups: 4, created: false });
      expect(await client.get(groupsKey('c1')).string()).toBe('4');
      expect(groupsKey('c1')).toBe('/understudy/c1/groups');
      expect(await readGroupCount(client, 'c1')).toBe(4);
      const together = await Promise.all([1, 2, 3, 8].map((g) => claimGroupCount(client, 'c2', g)));
      expect(together.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(together.map((r) => r.clusterGroups)).size).toBe(1);
      await client.put(groupsKey('c3')).value('four');
      await expect(claimGroupCount(client, 'c3', 4)).rejects.toBeInstanceOf(GroupCountRecordError);
      await expect(readGroupCount(client, 'c3')).rejects.toThrow(/not a group count/);
    } finally {
      client.close();
    }
  });
});
