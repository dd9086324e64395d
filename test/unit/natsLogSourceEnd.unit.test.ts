// Regression (CI, natsHang.e2e, 2026-12-06): after the SIGSTOPped stream leader came back, the
// log read back from NATS ended thousands of entries short, and an acknowledged write looked
// lost ("ack putStart obj-4672 at 9350: expected undefined to be defined"). The read ended where
// its consumer said 0 messages were pending; an ephemeral consumer of an R3 stream may sit on
// the replica that is still catching up, which counts 0 pending at its own end, before the
// leader's. The read must end at the stream's last message as the leader counts it.
//
// JetStream stands in here: a consumer on a lagging replica cannot be placed on purpose with
// real servers (the server picks the replica), so a fake shows the two counts apart.
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { BatchSignature } from '../../src/adapters/nats/batchSignature.ts';
import { encodeBatch } from '../../src/domain/log/codec.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import { readLog } from '../../src/tools/log/logReader.ts';
import { NatsLogSource } from '../../src/tools/log/logSource.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const LAST = 10;
/** How many messages the consumer's replica holds at first; the rest arrive later. */
const ON_REPLICA = 4;

const message = (seq: number, pending: number) => ({
  seq,
  data: encodeBatch([
    toEntry(
      seq === 1
        ? { seq, epoch: 1, ts: T0, event: { op: 'EPOCH', epoch: 1, nodeId: 'n1' } }
        : { seq, epoch: 1, ts: T0 + seq, event: { op: 'PUT_END', key: `k${seq}` } },
    ),
  ]),
  headers: undefined,
  info: { pending },
});

/** A stream of {@link LAST} messages whose consumer's replica has caught up to ON_REPLICA. */
function laggingReplica(): JetStreamManager {
  let stopped = false;
  async function* deliver() {
    // The replica's own count: 0 pending at its end.
    for (let seq = 1; seq <= ON_REPLICA && !stopped; seq++) yield message(seq, ON_REPLICA - seq);
    await new Promise((r) => setTimeout(r, 50)); // the replica catches up
    for (let seq = ON_REPLICA + 1; seq <= LAST && !stopped; seq++) yield message(seq, LAST - seq);
  }
  const messages = Object.assign(deliver(), {
    stop: () => {
      stopped = true;
    },
  });
  const jsm = {
    streams: {
      info: () => Promise.resolve({ state: { first_seq: 1, last_seq: LAST, messages: LAST } }),
    },
    jetstream: () => ({
      consumers: { get: () => Promise.resolve({ consume: () => Promise.resolve(messages) }) },
    }),
  };
  return jsm as unknown as JetStreamManager;
}

describe('reading the stream (NatsLogSource)', () => {
  it('a consumer on a lagging replica (0 pending before the leader’s last message) still reads to the end', async () => {
    const nc = { close: () => Promise.resolve() } as unknown as NatsConnection;
    const source = new NatsLogSource(
      nc,
      laggingReplica(),
      'OPLOG_test',
      'a stream with a lagging replica',
      new BatchSignature(undefined),
      'test',
    );
    const entries = await readLog(source);
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: LAST }, (_, i) => i + 1));
  });
});
