/**
 * OpLog integrity in the simulation (memory log, three real runtimes): a stream message that is
 * not a batch of entries (bytes an outsider published to the OpLog subject, or a message
 * corrupted on disk) is passed over by every follower and by a promoting node, and reported;
 * it never stops the cluster. Regression tests of: one undecodable message fenced the primary,
 * sent every standby into full sync in a loop, and left the cluster without a primary.
 * Likewise for well-formed entries no elected primary wrote (domain/log/admission.ts): a forged
 * `EPOCH` fence (epoch 1e9) and an entry stamped with an epoch nobody was elected at are passed
 * over and reported (`foreign`), never folded. Regression tests of: a forged EPOCH 1e9 left the
 * cluster without a primary for good; a forged REMOVE of an acknowledged key was folded by
 * every node.
 *
 * Each case checks what a user would: a write is served within TTL + 1 s of the message,
 * every acknowledged write reads back, every node's state digest is the same, and every node
 * that was following the log then counts the skipped message once (`skipped` in its status;
 * a primary writes the log and does not read it back).
 */
import { describe, expect, it } from 'vitest';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import type { LoggedEvent } from '../../src/domain/model/types.ts';
import type { UnderstudyClient } from '../../src/client/client.ts';
import { memoryCluster, type MemoryCluster } from './memoryCluster.ts';

const TTL = 2000;
/** The bound: a primary serves within one TTL + 1 s of the bad message. */
const SERVED_WITHIN_MS = TTL + 1000;

async function started(): Promise<MemoryCluster> {
  const c = memoryCluster(TTL);
  await c.run(3000);
  expect(c.primaries()).toHaveLength(1);
  return c;
}

/** Runs until a write of `client` is acknowledged; the simulated ms it took. */
async function timeToWrite(
  c: MemoryCluster,
  client: UnderstudyClient,
  key: string,
): Promise<number> {
  const from = c.clock.now();
  await c.settle(client.putStart(key, 100, 1), SERVED_WITHIN_MS + 5000);
  return c.clock.now() - from;
}

/** Every acknowledged key reads back, and every node folded the same state. */
async function expectIntact(
  c: MemoryCluster,
  client: UnderstudyClient,
  keys: readonly string[],
): Promise<void> {
  for (const key of keys) expect(await c.settle(client.exists(key)), key).toBe(true);
  await c.run(500);
  const last = c.store.bounds().lastSeq;
  for (const node of c.nodes) expect(node.store.appliedSeq, node.status().nodeId).toBe(last);
  const digests = new Set(c.nodes.map((node) => stateDigest(node.store.state)));
  expect(digests.size).toBe(1);
}

/** Publishes `logged` as an outsider would: one message, no expected stream slot. */
function forge(c: MemoryCluster, logged: Omit<LoggedEvent, 'ts'>): number {
  return c.store.publishOutsider([toEntry({ ...logged, ts: c.clock.wallNow() })]);
}

describe('OpLog integrity (simulation)', () => {
  for (const [name, forged] of [
    [
      'a forged EPOCH fence of epoch 1e9 (no real election)',
      (seq: number) => ({ seq, epoch: 1e9, event: { op: 'EPOCH', epoch: 1e9, nodeId: 'n2' } }),
    ],
    [
      'a forged REMOVE of an acknowledged key, stamped with an epoch nobody was elected at',
      (seq: number, epoch: number) => ({
        seq,
        epoch: epoch + 1000,
        event: { op: 'REMOVE', key: 'before-0' },
      }),
    ],
    [
      'a REMOVE of an acknowledged key stamped with an earlier epoch (a stale writer)',
      (seq: number, epoch: number) => ({
        seq,
        epoch: epoch - 1,
        event: { op: 'REMOVE', key: 'before-0' },
      }),
    ],
  ] as const) {
    it(`${name} is passed over by every node and reported; a primary serves within TTL + 1 s, nothing is lost`, async () => {
      const c = await started();
      const client = await c.client();
      await c.settle(client.mountSegment('a', 's1', 1 << 20));
      const keys: string[] = [];
      for (let i = 0; i < 3; i++) {
        await c.settle(client.putStart(`before-${i}`, 100, 1));
        await c.settle(client.putEnd(`before-${i}`));
        keys.push(`before-${i}`);
      }
      // A second election, so that an earlier epoch exists.
      const [first] = c.primaries();
      await c.settle(first!.switchover());
      await c.run(3000);
      const [primary] = c.primaries();
      expect(primary).toBeDefined();
      const epoch = primary!.store.state.epoch;
      const followers = c.nodes.filter((n) => n.role !== 'primary');
      const seq = c.store.bounds().lastSeq + 1;
      forge(c, forged(seq, epoch) as Omit<LoggedEvent, 'ts'>);
      // Its message took the slot the primary expected: the primary's next append is fenced.
      expect(await timeToWrite(c, client, 'after-0')).toBeLessThanOrEqual(SERVED_WITHIN_MS);
      keys.push('after-0');
      for (let i = 1; i < 3; i++) {
        await c.settle(client.putStart(`after-${i}`, 100, 1));
        keys.push(`after-${i}`);
      }
      await expectIntact(c, client, keys);
      for (const node of followers) expect(node.status().foreign, node.status().nodeId).toBe(1);
      for (const node of c.nodes) {
        expect(node.status().foreign, node.status().nodeId).toBeLessThanOrEqual(1);
        expect(node.status().skipped, node.status().nodeId).toBe(0);
        expect(node.role).not.toBe('syncing');
        expect(node.status().verification.fullSyncs, node.status().nodeId).toBe(0);
        expect(node.store.state.epoch).toBeLessThan(1e9);
      }
      expect((await c.settle(client.get('before-0'))).key).toBe('before-0');
      await client.close();
    });
  }

  it('an undecodable message between entries is passed over by every node: the primary it fenced is replaced within TTL + 1 s and nothing is lost', async () => {
    const c = await started();
    const client = await c.client();
    await c.settle(client.mountSegment('a', 's1', 1 << 20));
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) {
      await c.settle(client.putStart(`before-${i}`, 100, 1));
      keys.push(`before-${i}`);
    }
    // The primary writes and does not follow the log: the followers are the ones to see it.
    const followers = c.nodes.filter((n) => n.role !== 'primary');
    const badSeq = c.store.publishUndecodable('64 bytes of garbage');
    // The primary's next append expected the slot the garbage took: it is fenced.
    expect(await timeToWrite(c, client, 'after-0')).toBeLessThanOrEqual(SERVED_WITHIN_MS);
    keys.push('after-0');
    for (let i = 1; i < 5; i++) {
      await c.settle(client.putStart(`after-${i}`, 100, 1));
      keys.push(`after-${i}`);
    }
    await expectIntact(c, client, keys);
    for (const node of followers) expect(node.status().skipped, node.status().nodeId).toBe(1);
    for (const node of c.nodes) {
      expect(node.status().skipped, node.status().nodeId).toBeLessThanOrEqual(1);
      expect(node.role).not.toBe('syncing');
      expect(node.status().verification.fullSyncs, node.status().nodeId).toBe(0);
    }
    expect(c.store.messages().find((m) => m.streamSeq === badSeq)?.undecodable).toBeDefined();
    await client.close();
  });

  it('a promotion drains past an undecodable last message and fences right after it', async () => {
    const c = await started();
    const client = await c.client();
    await c.settle(client.mountSegment('a', 's1', 1 << 20));
    await c.settle(client.putStart('k0', 100, 1));
    const [primary] = c.primaries();
    // The primary dies; then garbage lands as the stream's last message.
    primary!.actor.stop();
    await c.electors.get(primary!.status().nodeId)!.close();
    c.store.publishUndecodable();
    c.store.publishUndecodable();
    const from = c.clock.now();
    await c.settle(client.putStart('k1', 100, 1), 3 * TTL + 5000);
    // The dead primary's lease runs out first (one TTL), then a standby is elected.
    expect(c.clock.now() - from).toBeLessThanOrEqual(TTL + SERVED_WITHIN_MS);
    const [next] = c.primaries();
    expect(next).toBeDefined();
    expect(next).not.toBe(primary);
    for (const node of c.nodes.filter((n) => n !== primary)) {
      expect(node.status().skipped, node.status().nodeId).toBe(2);
    }
    expect(await c.settle(client.exists('k0'))).toBe(true);
    expect(await c.settle(client.exists('k1'))).toBe(true);
    await client.close();
  });

  it('a promotion drains past a foreign last entry of any seq and fences right after it', async () => {
    const c = await started();
    const client = await c.client();
    await c.settle(client.mountSegment('a', 's1', 1 << 20));
    await c.settle(client.putStart('k0', 100, 1));
    const [primary] = c.primaries();
    const epoch = primary!.store.state.epoch;
    primary!.actor.stop();
    await c.electors.get(primary!.status().nodeId)!.close();
    // The stream's last message: an entry far ahead of the log, of a foreign epoch. How far
    // the log goes is not its last message's seq.
    forge(c, { seq: 1_000_000, epoch: epoch + 7, event: { op: 'REMOVE', key: 'k0' } });
    const from = c.clock.now();
    await c.settle(client.putStart('k1', 100, 1), 3 * TTL + 5000);
    expect(c.clock.now() - from).toBeLessThanOrEqual(TTL + SERVED_WITHIN_MS);
    for (const node of c.nodes.filter((n) => n !== primary)) {
      expect(node.status().foreign, node.status().nodeId).toBe(1);
      expect(node.status().logLastSeq, node.status().nodeId).toBeLessThan(1_000_000);
    }
    expect(await c.settle(client.exists('k0'))).toBe(true);
    expect(await c.settle(client.exists('k1'))).toBe(true);
    await client.close();
  });

  it('a flood of undecodable messages does not stop the log: writes go on between them', async () => {
    const c = await started();
    const client = await c.client();
    await c.settle(client.mountSegment('a', 's1', 1 << 20));
    const keys: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) c.store.publishUndecodable(`garbage ${round}.${i}`);
      const key = `k${round}`;
      expect(await timeToWrite(c, client, key)).toBeLessThanOrEqual(SERVED_WITHIN_MS);
      keys.push(key);
    }
    await expectIntact(c, client, keys);
    // A node that was never primary followed the whole log and passed over each message once.
    const neverPrimary = c.nodes.filter((n) => n.status().promotions === 0);
    expect(neverPrimary.length).toBeGreaterThan(0);
    for (const node of neverPrimary) expect(node.status().skipped, node.status().nodeId).toBe(9);
    for (const node of c.nodes) expect(node.status().skipped).toBeLessThanOrEqual(9);
    await client.close();
  });
});
