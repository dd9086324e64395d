// The pure parts of `understudy status` / `switchover`: settings, the apply-rate scrape, the
// table and the last-verification cell.
import { describe, expect, it } from 'vitest';
import { durationFlag, loadClusterAccess, UsageError } from '../../src/cli/clusterOptions.ts';
import {
  parseApplyRate,
  renderStatusTable,
  verificationCell,
  type ClusterStatus,
  type StatusRow,
} from '../../src/cli/statusCommand.ts';

describe('cluster access settings', () => {
  it('takes flags over the environment, and parses etcd lists', () => {
    const env = { UNDERSTUDY_CLUSTER: 'from-env', UNDERSTUDY_ETCD: 'http://a:1, http://b:2' };
    expect(loadClusterAccess({}, env)).toMatchObject({
      cluster: 'from-env',
      etcd: ['http://a:1', 'http://b:2'],
    });
    expect(loadClusterAccess({ cluster: 'flag', etcd: 'http://c:3' }, env)).toMatchObject({
      cluster: 'flag',
      etcd: ['http://c:3'],
    });
  });

  it('names a missing or bad cluster in a usage error', () => {
    expect(() => loadClusterAccess({}, {})).toThrow(UsageError);
    expect(() => loadClusterAccess({ cluster: 'a b' }, {})).toThrow(/cluster/);
  });

  it('parses durations and refuses nonsense', () => {
    expect(durationFlag('250ms', 'interval', 1000)).toBe(250);
    expect(durationFlag('2s', 'interval', 1000)).toBe(2000);
    expect(durationFlag(undefined, 'interval', 1000)).toBe(1000);
    expect(() => durationFlag('soon', 'interval', 1000)).toThrow(UsageError);
    expect(() => durationFlag('0s', 'interval', 1000)).toThrow(UsageError);
  });
});

describe('status rendering', () => {
  it('reads understudy_apply_rate from Prometheus text, with or without labels', () => {
    const text = [
      '# HELP understudy_apply_rate entries folded per second',
      '# TYPE understudy_apply_rate gauge',
      'understudy_apply_rate 1234.5',
    ].join('\n');
    expect(parseApplyRate(text)).toBe(1234.5);
    expect(parseApplyRate('understudy_apply_rate{node="n1"} 7\n')).toBe(7);
    expect(parseApplyRate('other 1\n')).toBeUndefined();
  });

  it('shows the last verification as status and age, or -', () => {
    const now = 100_000;
    expect(verificationCell(null, now)).toBe('-');
    expect(
      verificationCell({ lastStatus: null, lastRoundAt: 0, rounds: 0, mismatches: 0 }, now),
    ).toBe('-');
    expect(
      verificationCell({ lastStatus: 'OK', lastRoundAt: 88_000, rounds: 3, mismatches: 0 }, now),
    ).toBe('OK 12s ago');
  });

  it('renders one aligned row per node, marking the leader and unreachable nodes', () => {
    const row = (id: string, over: Partial<StatusRow>): StatusRow => ({
      id,
      state: 'standby',
      epoch: 9,
      appliedSeq: 100,
      lagEntries: 0,
      lagMs: 0,
      verification: null,
      address: `http://127.0.0.1:1${id.slice(1)}`,
      leader: false,
      reachable: true,
      recordUpdatedAt: 0,
      failClosed: null,
      ...over,
    });
    const status: ClusterStatus = {
      cluster: 'c',
      leader: { nodeId: 'n1', address: 'http://127.0.0.1:11', epoch: 9 },
      applyRate: 500,
      readAt: 0,
      rows: [
        row('n1', { state: 'primary', leader: true, appliedSeq: 150 }),
        row('n2', { lagEntries: 50, lagMs: 100 }),
        row('n3', { reachable: false, lagEntries: null, lagMs: null }),
      ],
    };
    const lines = renderStatusTable(status, 0).trimEnd().split('\n');
    expect(lines[0]).toBe(
      'cluster c: leader n1 epoch 9, apply rate 500.0/s (* holds the leader key)',
    );
    expect(lines[1]).toMatch(
      /^ID\s+STATE\s+EPOCH\s+APPLIED\s+LAG\s+LAG_MS\s+LAST_VERIFICATION\s+ADDRESS$/,
    );
    expect(lines[2]).toMatch(/^n1\*\s+primary\s+9\s+150\s+0\s+0\s+-\s+http/);
    expect(lines[3]).toMatch(/^n2\s+standby\s+9\s+100\s+50\s+100\s+-\s+http/);
    expect(lines[4]).toMatch(/^n3\s+standby\(unreachable\)\s+9\s+100\s+-\s+-\s+-\s+http/);
    // Columns line up: every ADDRESS starts at the same offset.
    const offsets = lines.slice(1).map((l) => l.search(/(ADDRESS|http)/));
    expect(new Set(offsets).size).toBe(1);
  });

  it('marks a node that failed closed and prints its reason under the table', () => {
    const status: ClusterStatus = {
      cluster: 'c',
      leader: null,
      applyRate: null,
      readAt: 0,
      rows: [
        {
          id: 'n1',
          state: 'starting',
          epoch: 0,
          appliedSeq: 0,
          lagEntries: null,
          lagMs: null,
          verification: null,
          address: 'http://127.0.0.1:11',
          leader: false,
          reachable: true,
          recordUpdatedAt: 0,
          failClosed: 'the stream starts at entry 41 and there is no checkpoint',
        },
      ],
    };
    const lines = renderStatusTable(status, 0).trimEnd().split('\n');
    expect(lines[2]).toMatch(/^n1\s+starting\(failed closed\)\s/);
    expect(lines[3]).toBe(
      'n1 failed closed: the stream starts at entry 41 and there is no checkpoint',
    );
  });
});
