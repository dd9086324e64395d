// The etcd elector's lease bookkeeping against a scripted etcd3 client on a simulated clock:
// replies that come late, for a lease that is no longer the current one.
import { EventEmitter } from 'node:events';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { createEtcdElector } from '../../src/adapters/etcd/etcdElector.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';

/** One keep-alive stream the elector opened: what it asked, and a way to answer. */
interface ScriptedStream {
  readonly leaseId: string;
  answer(ttl: number): void;
}

/** An Etcd3 whose lease calls the test answers by hand; nothing else is used here. */
function scriptedEtcd(): { client: Etcd3; streams: ScriptedStream[]; granted: string[] } {
  const streams: ScriptedStream[] = [];
  const granted: string[] = [];
  let next = 1;
  const client = Object.create(Etcd3.prototype) as Etcd3;
  Object.defineProperty(client, 'leaseClient', {
    value: {
      leaseGrant: () => {
        const id = String(next++);
        granted.push(id);
        return Promise.resolve({ ID: id, TTL: '2' });
      },
      leaseRevoke: () => Promise.resolve({}),
      leaseKeepAlive: () => {
        const stream = Object.assign(new EventEmitter(), {
          write(request: { ID: string }) {
            streams.push({
              leaseId: request.ID,
              answer: (ttl: number) => stream.emit('data', { ID: request.ID, TTL: String(ttl) }),
            });
          },
          end: () => undefined,
          cancel: () => undefined,
        });
        return Promise.resolve(stream);
      },
    },
  });
  return { client, streams, granted };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('etcd elector: lease bookkeeping', () => {
  it('a late keep-alive answer for an earlier lease does not end the current one', async () => {
    const clock = new SimClock(1_000_000);
    const etcd = scriptedEtcd();
    const elector = createEtcdElector({
      client: etcd.client,
      cluster: 'unit',
      nodeId: 'n1',
      ttlMs: 3000,
      clock,
    });
    await elector.start();
    // The first keep-alive of lease 1 goes out; etcd does not answer it yet.
    clock.advance(1000);
    await settle();
    expect(etcd.streams.map((s) => s.leaseId)).toEqual(['1']);
    const late = etcd.streams[0]!;
    // Lease 1's deadline passes without an answer: lost; a new start grants lease 2.
    clock.advance(2000);
    await settle();
    await elector.start();
    expect(etcd.granted).toEqual(['1', '2']);
    const lost: string[] = [];
    elector.onLeaseLost((reason) => lost.push(reason));
    const deadline = elector.leaseDeadline();
    expect(deadline).toBeGreaterThan(clock.now());
    // Now etcd answers lease 1's keep-alive: that lease is gone (TTL -1).
    late.answer(-1);
    await settle();
    expect(lost).toEqual([]);
    expect(elector.leaseDeadline()).toBe(deadline);
    // Lease 2 is kept alive by one loop only: one keep-alive per interval, for lease 2.
    clock.advance(1000);
    await settle();
    expect(etcd.streams.slice(1).map((s) => s.leaseId)).toEqual(['2']);
    await elector.close();
  });
});
