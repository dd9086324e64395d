import { describe, expect, it } from 'vitest';
import type { MemberRecord } from '../../src/ports/elector.ts';
import { chooseCheckpointWriter } from '../../src/node/checkpoints/checkpointer.ts';
import { streamContinues } from '../../src/node/checkpoints/restoreWithoutPrimary.ts';
import { loadNodeConfig, retentionProblems } from '../../src/config/config.ts';
import {
  APPEND_ACK_TIMEOUT_MS,
  APPEND_RESOLVE_TIMEOUT_MS,
  minDuplicateWindowMs,
  OPLOG_DUPLICATE_WINDOW_MS,
} from '../../src/adapters/nats/streamLimits.ts';
import { checkpointInfo } from '../fixtures/checkpointInfo.ts';

const info = checkpointInfo(100, { lastStreamSeq: 40, stateDigest: 1 });

describe('retention guards', () => {
  const base = { checkpointInterval: 600_000 };

  it('accept no limits and an age of at least three checkpoint intervals', () => {
    expect(retentionProblems({ ...base, streamMaxAge: 0, streamMaxBytes: -1 })).toEqual([]);
    expect(retentionProblems({ ...base, streamMaxAge: 1_800_000, streamMaxBytes: -1 })).toEqual([]);
  });

  it('refuse a shorter age and any size limit, naming the setting and what to set', () => {
    const problems = retentionProblems({ ...base, streamMaxAge: 600_000, streamMaxBytes: 1 << 30 });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(
      /^streamMaxAge: 10m could trim .* at least 3 × checkpointInterval \(30m\)/,
    );
    expect(problems[1]).toMatch(/^streamMaxBytes: .* set -1/);
    expect(() => loadNodeConfig({ id: 'n1', cluster: 'c', streamMaxAge: '10m' }, {})).toThrow(
      /bad configuration: --stream-max-age \(UNDERSTUDY_STREAM_MAX_AGE\): 10m could trim/,
    );
    expect(loadNodeConfig({ id: 'n1', cluster: 'c' }, {}).streamMaxAge).toBe(0);
  });
});

describe('fault 6: an age limit NATS JetStream refuses (below the duplicate window)', () => {
  it('refuses an age of 3 checkpoint intervals that is below the 2m duplicate window, naming the flag', () => {
    const short = { checkpointInterval: 20_000, streamMaxBytes: -1 };
    expect(retentionProblems({ ...short, streamMaxAge: 60_000 })).toEqual([
      "streamMaxAge: 1m is shorter than the OpLog stream's duplicate window (2m), which NATS " +
        'JetStream refuses; set 0 (no age limit: checkpoints trim the stream) or at least 2m',
    ]);
    expect(() =>
      loadNodeConfig({ id: 'n1', cluster: 'c', streamMaxAge: '1m', checkpointInterval: '20s' }, {}),
    ).toThrow(
      /^bad configuration: --stream-max-age \(UNDERSTUDY_STREAM_MAX_AGE\): 1m is shorter than the OpLog stream's duplicate window \(2m\)/,
    );
    expect(retentionProblems({ ...short, streamMaxAge: 120_000 })).toEqual([]);
    expect(
      loadNodeConfig({ id: 'n1', cluster: 'c', streamMaxAge: '2m', checkpointInterval: '20s' }, {})
        .streamMaxAge,
    ).toBe(120_000);
  });

  it('the duplicate window covers every retry of one append', () => {
    expect(OPLOG_DUPLICATE_WINDOW_MS).toBeGreaterThanOrEqual(
      minDuplicateWindowMs(APPEND_ACK_TIMEOUT_MS, APPEND_RESOLVE_TIMEOUT_MS),
    );
  });
});

describe('checkpoint writer and coverage', () => {
  const member = (
    nodeId: string,
    role: string,
    appliedSeq: number,
    updatedAt = 1000,
  ): MemberRecord => ({
    nodeId,
    role,
    epoch: 1,
    appliedSeq,
    address: '',
    updatedAt,
  });

  it('the caught-up standby with the smallest id writes; none qualifying means the primary', () => {
    const members = [
      member('n3', 'standby', 500),
      member('n2', 'standby', 10),
      member('n1', 'primary', 500),
      member('n0', 'standby', 500, 0),
    ];
    expect(chooseCheckpointWriter(members, 500, 1000, 100, 500)).toBe('n3');
    expect(chooseCheckpointWriter(members, 500, 1000, 1000, 500)).toBe('n2');
    expect(chooseCheckpointWriter(members, 500, 1000, 1000, 5000)).toBe('n0');
    expect(chooseCheckpointWriter([member('n1', 'primary', 5)], 5, 1000, 10, 500)).toBeUndefined();
  });

  // Regression (issue 27): member records are published every second, so at 6,000 writes/s a
  // standby in step was ~6,000 entries behind by its record, none qualified, and the primary
  // wrote every checkpoint (300k objects: 3-4 s of its main loop) while it served writes.
  it('a standby in step by a record a second old writes while the log grows fast', () => {
    const members = [member('n1', 'primary', 16_000), member('n2', 'standby', 9_800, 0)];
    // Now (1000 ms) the log ends at 16,000; it grew 6 entries a ms: 10,000 when n2 published.
    expect(chooseCheckpointWriter(members, 16_000, 1000, 1000, 3000, 6)).toBe('n2');
    // A standby that was behind when it published is still passed over.
    const behind = [member('n1', 'primary', 16_000), member('n2', 'standby', 8_000, 0)];
    expect(chooseCheckpointWriter(behind, 16_000, 1000, 1000, 3000, 6)).toBeUndefined();
  });

  it('a checkpoint is usable when the stream holds S+1, or is empty and no newer message was written', () => {
    expect(streamContinues({ firstSeq: 101, lastSeq: 200, lastStreamSeq: 90 }, info)).toBe(true);
    expect(streamContinues({ firstSeq: 50, lastSeq: 100, lastStreamSeq: 40 }, info)).toBe(true);
    expect(streamContinues({ firstSeq: 102, lastSeq: 200, lastStreamSeq: 90 }, info)).toBe(false);
    expect(streamContinues({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 40 }, info)).toBe(true);
    expect(streamContinues({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 41 }, info)).toBe(false);
  });
});
