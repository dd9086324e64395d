// Checks of a cluster's OpLog read back after a test: one linear history, and every
// acknowledged write where it was acknowledged.
import { expect } from 'vitest';
import type { LoggedEvent } from '../../src/domain/model/types.ts';
import type { AckRecord } from '../../src/tools/localCluster/workload.ts';

/** One linear history: seqs 1..n, epochs never go back, each epoch opened by its EPOCH fence. */
export function expectLinearHistory(log: readonly LoggedEvent[]): void {
  let epoch = 0;
  log.forEach((logged, i) => {
    expect(logged.seq).toBe(i + 1);
    expect(logged.epoch).toBeGreaterThanOrEqual(epoch);
    if (logged.epoch > epoch) {
      expect(logged.event.op).toBe('EPOCH');
      epoch = logged.epoch;
    }
  });
}

/** Every acknowledged write is in the log at the seq it was acknowledged with, as acknowledged. */
export function expectAcksInLog(acks: readonly AckRecord[], log: readonly LoggedEvent[]): void {
  for (const ack of acks) {
    const logged = log[ack.seq - 1];
    expect(
      logged,
      `ack ${ack.op} ${ack.key} at ${ack.seq} (the log read back ends at ${log.at(-1)?.seq ?? 0})`,
    ).toBeDefined();
    const event = logged!.event;
    expect(event.op).toBe(ack.op === 'putStart' ? 'PUT_START' : 'PUT_END');
    expect('key' in event ? event.key : undefined).toBe(ack.key);
    if (ack.replicas !== undefined && event.op === 'PUT_START') {
      expect(event.replicas.map((r) => [r.segmentId, r.offset, r.length])).toEqual(
        ack.replicas.map((r) => [r.segmentId, r.offset, r.length]),
      );
    }
  }
}
