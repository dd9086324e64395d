// An append whose acknowledgement never comes is read back and retried until the writer's
// resolveTimeoutMs runs out on its Clock, then rejects with AmbiguousAppendError: the deadline
// and backoff are simulated time, not the host's.
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { BatchSignature } from '../../src/adapters/nats/batchSignature.ts';
import { NatsOpLogWriter } from '../../src/adapters/nats/opLogWriter.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { AmbiguousAppendError } from '../../src/ports/opLog.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';

const entry: OpLogEntry = {
  seq: 1,
  epoch: 1,
  ts: 0,
  op: 'EVICTION',
  key: '',
  payload: new Uint8Array(),
  checksum: 0,
  prefixHash: 0,
};

describe('NatsOpLogWriter on a simulated clock', () => {
  it('an unacknowledged append turns ambiguous once resolveTimeoutMs of clock time has passed', async () => {
    const clock = new SimClock(1_000);
    let publishes = 0;
    // Every publish times out and the slot stays empty: the append's fate is never decided.
    const js = {
      publish: () => {
        publishes++;
        return Promise.reject(new Error('TIMEOUT'));
      },
    } as unknown as JetStreamClient;
    const jsm = {
      streams: {
        getMessage: () => Promise.resolve(null),
        info: () => Promise.resolve({ state: { last_seq: 0 } }),
      },
    } as unknown as JetStreamManager;
    const writer = new NatsOpLogWriter(
      js,
      jsm,
      'S',
      'subject',
      {
        maxBatchEntries: 100,
        maxBatchBytes: 512 * 1024,
        ackTimeoutMs: 5_000,
        resolveTimeoutMs: 30_000,
        signature: new BatchSignature(undefined),
        clock,
      },
      0,
      () => undefined,
    );
    let outcome: unknown;
    writer.append([entry]).then(
      (ack) => (outcome = ack),
      (err: unknown) => (outcome = err),
    );
    await clock.advanceAsync(29_000);
    expect(outcome).toBeUndefined();
    expect(publishes).toBeGreaterThan(10); // retried with a capped backoff meanwhile
    await clock.advanceAsync(2_000);
    expect(outcome).toBeInstanceOf(AmbiguousAppendError);
  });
});
