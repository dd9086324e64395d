// The failover bench's end-of-run checks (bench/lib/ackCheck.ts) on a log trimmed by
// checkpoints: an acknowledgement below the stream's first seq is checked against the state,
// never counted lost; the history of a trimmed stream starts inside a term.
import { describe, expect, it } from 'vitest';
import { historyBreaks, lostAcks, type ReadObject } from '../../bench/lib/ackCheck.ts';
import type { LoggedEvent, ObjectRecord, Replica } from '../../src/domain/model/types.ts';
import type { AckRecord } from '../../src/tools/localCluster/workload.ts';

const EPOCH = 7;
const replica = (key: number, status: Replica['status']): Replica => ({
  segmentId: 's',
  nodeId: 'n',
  offset: key * 10,
  length: 10,
  status,
});

/** Keys 0..n-1, each putStart then putEnd: seqs 2 (after the fence at 1) on. */
function history(n: number): { entries: LoggedEvent[]; acks: AckRecord[] } {
  const entries: LoggedEvent[] = [
    { seq: 1, epoch: EPOCH, ts: 0, event: { op: 'EPOCH', epoch: EPOCH, nodeId: 'n1' } },
  ];
  const acks: AckRecord[] = [];
  for (let k = 0; k < n; k++) {
    const key = `k${k}`;
    const start = entries.length + 1;
    entries.push(
      {
        seq: start,
        epoch: EPOCH,
        ts: 0,
        event: { op: 'PUT_START', key, size: 10, replicas: [replica(k, 'processing')] },
      },
      { seq: start + 1, epoch: EPOCH, ts: 0, event: { op: 'PUT_END', key } },
    );
    const r = replica(k, 'processing');
    acks.push(
      { op: 'putStart', key, seq: start, sentAt: 0, ackedAt: 0, replicas: [r] },
      { op: 'putEnd', key, seq: start + 1, sentAt: 0, ackedAt: 0 },
    );
  }
  return { entries, acks };
}

/** The state after the whole history: every key complete. */
function stateOf(n: number): ReadObject {
  const records = new Map<string, ObjectRecord>();
  for (let k = 0; k < n; k++)
    records.set(`k${k}`, {
      key: `k${k}`,
      size: 10,
      replicas: [replica(k, 'complete')],
      lastSeq: 2 * k + 3,
    });
  return (key) => Promise.resolve(records.get(key));
}

describe('bench ack check', () => {
  it('finds no loss in a whole log', async () => {
    const { entries, acks } = history(5);
    const check = await lostAcks(acks, entries, stateOf(5));
    expect(check).toMatchObject({ lost: [], inLog: 10, inState: 0 });
    expect(historyBreaks(entries)).toBe(0);
  });

  it('an ack below a trimmed stream is checked against the state, not counted lost', async () => {
    const { entries, acks } = history(50);
    const trimmed = entries.slice(61); // the stream starts at seq 62, inside the term
    const check = await lostAcks(acks, trimmed, stateOf(50));
    expect(check.lost).toEqual([]);
    expect(check.inState).toBe(60);
    expect(check.inLog).toBe(40);
    expect(historyBreaks(trimmed)).toBe(0);
  });

  it('still finds an ack the state does not hold, and a gap in a trimmed stream', async () => {
    const { entries, acks } = history(50);
    const trimmed = entries.slice(61);
    const read = stateOf(50);
    const forgetful: ReadObject = (key) => (key === 'k3' ? Promise.resolve(undefined) : read(key));
    const check = await lostAcks(acks, trimmed, forgetful);
    expect(check.lost.map((a) => `${a.op} ${a.key}`)).toEqual(['putStart k3', 'putEnd k3']);
    const gapped = [...trimmed.slice(0, 5), ...trimmed.slice(6)];
    expect(historyBreaks(gapped)).toBeGreaterThan(0);
    expect((await lostAcks(acks, gapped, read)).lost.length).toBeGreaterThan(0);
  });
});
