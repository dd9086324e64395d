// The pure parts of `understudy status` / `switchover`: settings, the apply-rate scrape, the
// table and the last-verification cell; the node's log on a terminal; --print-config.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatLogLine, logDestination } from '../../src/cli/prettyLog.ts';
import { loadNodeConfig, nodeSettings } from '../../src/config/config.ts';
import { configFileOf } from '../../src/config/printConfig.ts';
import { missingReason, withMissing } from '../../src/cli/statusMissing.ts';
import { durationFlag, loadClusterAccess } from '../../src/cli/clusterOptions.ts';
import { ConfigError } from '../../src/config/settings.ts';
import {
  noPrimaryReason,
  parseApplyRate,
  renderStatusTable,
  servingPrimary,
  verificationCell,
  type ClusterStatus,
  type StatusRow,
} from '../../src/tools/clusterStatus.ts';

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
    expect(() => loadClusterAccess({}, {})).toThrow(ConfigError);
    expect(() => loadClusterAccess({ cluster: 'a b' }, {})).toThrow(/cluster/);
  });

  it('parses durations and refuses nonsense', () => {
    expect(durationFlag('250ms', '--interval', 1000)).toBe(250);
    expect(durationFlag('2s', '--interval', 1000)).toBe(2000);
    expect(durationFlag(undefined, '--interval', 1000)).toBe(1000);
    expect(() => durationFlag('soon', '--interval', 1000)).toThrow(
      /^bad configuration: --interval: "soon" is not a duration/,
    );
    expect(() => durationFlag('0s', '--interval', 1000)).toThrow(ConfigError);
    expect(() => durationFlag('5', '--interval', 1000)).toThrow(
      /"5" has no unit: write 5s, or 5ms/,
    );
  });
});

/** A status row: a reachable standby at epoch 9, seq 100, not behind, unless `over` says otherwise. */
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
    const summary = { rounds: 3, mismatches: 0, lastRoundAt: 88_000, lastStatusAt: 88_000 };
    expect(verificationCell(null, now)).toBe('-');
    expect(
      verificationCell({ ...summary, lastStatus: null, lastRoundAt: 0, lastStatusAt: 0 }, now),
    ).toBe('-');
    expect(verificationCell({ ...summary, lastStatus: 'OK' }, now)).toBe('OK 12s ago');
    // A failed round shows when it failed, not when the last one was answered.
    expect(verificationCell({ ...summary, lastStatus: 'FAILED', lastStatusAt: 98_000 }, now)).toBe(
      'FAILED 2s ago',
    );
  });

  it('renders one aligned row per node, marking the leader and unreachable nodes', () => {
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
    expect(noPrimaryReason(status)).toBeUndefined();
  });

  it('has no primary when the leader-key holder does not answer, and says so (exit 3)', () => {
    const leader = { nodeId: 'n1', address: 'http://127.0.0.1:11', epoch: 9 };
    const dead: ClusterStatus = {
      cluster: 'c',
      leader,
      applyRate: null,
      readAt: 0,
      // n1's row comes from its member record: it says primary, but n1 did not answer.
      rows: [row('n1', { state: 'primary', leader: true, reachable: false }), row('n2', {})],
    };
    expect(servingPrimary(dead)).toBeUndefined();
    expect(noPrimaryReason(dead)).toBe(
      'no primary answers: n1 holds the leader key (epoch 9) but its /status at http://127.0.0.1:11 does not answer; if it died, a standby takes over once its lease expires',
    );
    expect(noPrimaryReason({ ...dead, leader: null, rows: [row('n2', {})] })).toMatch(
      /^no primary: nobody holds the leader key/,
    );
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

describe('the node log on a terminal', () => {
  it('formats a pino record as one line: time, level, message, fields', () => {
    const line = formatLogLine(
      JSON.stringify({
        level: 30,
        time: Date.UTC(2026, 0, 1, 9, 41, 2, 123),
        pid: 1,
        hostname: 'h',
        msg: 'became primary',
        event: 'promoted',
        epoch: 3,
        reason: 'lease expired',
      }),
    );
    expect(line).toBe(
      '09:41:02.123 INFO  became primary event=promoted epoch=3 reason="lease expired"\n',
    );
    expect(formatLogLine('not json')).toBe('not json\n');
  });

  it('formats only when stdout is a terminal; JSON otherwise', () => {
    const written: string[] = [];
    const sink = (isTTY: boolean) => ({
      isTTY,
      write: (text: string) => written.push(text) > 0,
    });
    expect(logDestination(sink(false))).toBeUndefined();
    const tty = logDestination(sink(true));
    tty?.write(`${JSON.stringify({ level: 40, time: 0, msg: 'slow' })}\n`);
    expect(written).toEqual(['00:00:00.000 WARN  slow\n']);
  });
});

describe('--print-config writes a config file --config reads back', () => {
  it('durations with their unit, secrets left out, the same settings read back', () => {
    const flags = {
      id: 'n1',
      cluster: 'main',
      leaseTtl: '5s',
      nats: 'nats://a:4222,nats://b:4222',
      checkpointInterval: '10m',
      natsUser: 'master',
    };
    const config = loadNodeConfig(flags, { UNDERSTUDY_NATS_PASSWORD: 'hunter2' });
    const printed = configFileOf(nodeSettings, config);
    expect(printed.file).toMatchObject({ leaseTtl: '5s', checkpointInterval: '10m' });
    expect(printed.omitted).toEqual(['natsPassword']);
    expect(JSON.stringify(printed.file)).not.toContain('hunter2');
    const dir = mkdtempSync(join(tmpdir(), 'understudy-print-config-'));
    try {
      const file = join(dir, 'n1.json');
      writeFileSync(file, JSON.stringify(printed.file, null, 2));
      const back = loadNodeConfig({ config: file }, { UNDERSTUDY_NATS_PASSWORD: 'hunter2' });
      expect(back).toEqual(config);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('status shows an expected node without a member record as missing', () => {
  it('adds a missing row in id order, renders it and names it under the table', () => {
    const status: ClusterStatus = {
      cluster: 'c',
      leader: { nodeId: 'n1', address: 'http://127.0.0.1:11', epoch: 9 },
      applyRate: null,
      readAt: 0,
      rows: [row('n1', { state: 'primary', leader: true }), row('n3', {})],
    };
    const shown = withMissing(status, ['n1', 'n2', 'n3']);
    expect(shown.rows.map((r) => [r.id, r.state])).toEqual([
      ['n1', 'primary'],
      ['n2', 'missing'],
      ['n3', 'standby'],
    ]);
    const lines = renderStatusTable(shown, 0).trimEnd().split('\n');
    expect(lines[3]).toMatch(/^n2\s+missing\s+0\s+0\s+-\s+-\s+-\s+-$/);
    expect(missingReason(shown)).toBe(
      'missing: n2 (expected, but not in the member list: stopped, or its lease expired)',
    );
    expect(withMissing(status, ['n1'])).toBe(status);
    expect(missingReason(status)).toBeUndefined();
    expect(noPrimaryReason(shown)).toBeUndefined();
  });
});
