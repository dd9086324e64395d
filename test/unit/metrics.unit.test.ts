import { describe, expect, it } from 'vitest';
import { ApiError, encodeOk } from '../../src/api/wire.ts';
import { readiness, splitHostPort, verificationCounters } from '../../src/process/httpServer.ts';
import {
  ApplyRate,
  Histogram,
  NodeMetrics,
  timeRequests,
  type NodeMetricsSnapshot,
} from '../../src/observe/metrics.ts';
import {
  MetricNameError,
  escapeLabelValue,
  renderPrometheus,
  type MetricFamily,
} from '../../src/observe/prometheusText.ts';
import type { NodeRuntime } from '../../src/node/nodeRuntime.ts';

/** Parses the text format strictly enough to catch malformed output. */
function parseExposition(text: string): {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
} {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      (meta[1] === 'HELP' ? help : type).set(meta[2]!, meta[3]!);
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*",?)*)\})? (\S+)$/.exec(
        line,
      );
    expect(sample, `malformed line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const m of (sample![2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = sample![3]!;
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ name: sample![1]!, labels, value });
  }
  return { help, type, samples };
}

describe('renderPrometheus', () => {
  it('writes HELP and TYPE before the samples of each family', () => {
    const text = renderPrometheus([
      { name: 'a_total', help: 'A counter.', type: 'counter', samples: [{ value: 3 }] },
      {
        name: 'b',
        help: 'A gauge.',
        type: 'gauge',
        samples: [
          { labels: { x: '1' }, value: 1.5 },
          { labels: { x: '2' }, value: NaN },
        ],
      },
    ]);
    expect(text).toBe(
      [
        '# HELP a_total A counter.',
        '# TYPE a_total counter',
        'a_total 3',
        '# HELP b A gauge.',
        '# TYPE b gauge',
        'b{x="1"} 1.5',
        'b{x="2"} NaN',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values and help text', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const text = renderPrometheus([
      {
        name: 'g',
        help: 'line one\nback\\slash',
        type: 'gauge',
        samples: [{ labels: { key: 'he said "hi"\\\n' }, value: 1 }],
      },
    ]);
    expect(text).toContain('# HELP g line one\\nback\\\\slash\n');
    expect(text).toContain('g{key="he said \\"hi\\"\\\\\\n"} 1\n');
    const parsed = parseExposition(text);
    expect(parsed.samples[0]?.labels['key']).toBe('he said "hi"\\\n');
  });

  it('renders histograms as cumulative buckets ending with +Inf, then _sum and _count', () => {
    const h = new Histogram([0.1, 1, 10], 'op');
    for (const v of [0.05, 0.1, 0.5, 2, 20, 30]) h.observe('putStart', v);
    h.observe('get', 0.01);
    const text = renderPrometheus([
      { name: 'lat_seconds', help: 'Latency.', type: 'histogram', samples: h.samples() },
    ]);
    const { type, samples } = parseExposition(text);
    expect(type.get('lat_seconds')).toBe('histogram');
    const put = samples.filter((s) => s.labels['op'] === 'putStart');
    expect(
      put.filter((s) => s.name === 'lat_seconds_bucket').map((s) => [s.labels['le'], s.value]),
    ).toEqual([
      ['0.1', 2],
      ['1', 3],
      ['10', 4],
      ['+Inf', 6],
    ]);
    expect(put.find((s) => s.name === 'lat_seconds_count')?.value).toBe(6);
    expect(put.find((s) => s.name === 'lat_seconds_sum')?.value).toBeCloseTo(52.65);
    // series are sorted by label value: get before putStart
    expect(samples[0]?.labels['op']).toBe('get');
  });

  it('keeps bucket counts cumulative (non-decreasing) for any observations', () => {
    const h = new Histogram();
    for (let i = 0; i < 500; i++) h.observe('x', Math.abs(Math.sin(i)) * 12);
    const { samples } = parseExposition(
      renderPrometheus([{ name: 'h', help: 'h', type: 'histogram', samples: h.samples() }]),
    );
    const buckets = samples.filter((s) => s.name === 'h_bucket').map((s) => s.value);
    for (let i = 1; i < buckets.length; i++) {
      expect(buckets[i]).toBeGreaterThanOrEqual(buckets[i - 1]!);
    }
    expect(buckets[buckets.length - 1]).toBe(500);
  });

  it('rejects invalid metric and label names', () => {
    const bad = (family: MetricFamily) => () => renderPrometheus([family]);
    expect(bad({ name: '1x', help: '', type: 'gauge', samples: [] })).toThrow(MetricNameError);
    expect(
      bad({ name: 'x', help: '', type: 'gauge', samples: [{ labels: { 'a-b': '1' }, value: 1 }] }),
    ).toThrow(MetricNameError);
    expect(
      bad({ name: 'x', help: '', type: 'gauge', samples: [{ labels: { __x: '1' }, value: 1 }] }),
    ).toThrow(MetricNameError);
  });
});

describe('ApplyRate', () => {
  it('counts applied entries and their rate over the window; a reset does not count', () => {
    const rate = new ApplyRate(10_000);
    rate.sample(0, 0);
    rate.sample(100, 1000);
    rate.sample(300, 2000);
    expect(rate.total).toBe(300);
    expect(rate.perSecond).toBe(150);
    rate.sample(10, 3000); // full sync: seq went back
    rate.sample(20, 4000);
    expect(rate.total).toBe(310);
    // old samples leave the 10 s window
    rate.sample(20, 30_000);
    rate.sample(70, 31_000);
    expect(rate.perSecond).toBeCloseTo(50, 0);
  });
});

describe('NodeMetrics', () => {
  const snapshot: NodeMetricsSnapshot = {
    nodeId: 'n1',
    role: 'primary',
    roles: ['standby', 'primary', 'fenced'],
    epoch: 7,
    appliedSeq: 120,
    logLastSeq: 125,
    promotions: 2,
    fences: 1,
    verificationHealthy: true,
    verification: { rounds: 4, failedRounds: 2, mismatches: 1 },
  };

  it('renders every series of a node, with one state gauge set to 1', () => {
    const metrics = new NodeMetrics();
    metrics.observeRequest('putStart', 0.002);
    const { type, samples, help } = parseExposition(renderPrometheus(metrics.families(snapshot)));
    const value = (name: string, labels: Record<string, string> = {}) =>
      samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value;
    expect(value('understudy_node_info', { node: 'n1' })).toBe(1);
    expect(value('understudy_node_state', { state: 'primary' })).toBe(1);
    expect(value('understudy_node_state', { state: 'standby' })).toBe(0);
    expect(value('understudy_epoch')).toBe(7);
    expect(value('understudy_applied_seq')).toBe(120);
    expect(value('understudy_log_last_seq')).toBe(125);
    expect(value('understudy_lag_entries')).toBe(5);
    expect(value('understudy_promotions_total')).toBe(2);
    expect(value('understudy_fences_total')).toBe(1);
    expect(value('understudy_verification_rounds_total')).toBe(4);
    expect(value('understudy_verification_failed_rounds_total')).toBe(2);
    expect(value('understudy_verification_mismatches_total')).toBe(1);
    expect(value('understudy_verification_repairs_total')).toBe(0);
    expect(value('understudy_request_duration_seconds_count', { op: 'putStart' })).toBe(1);
    for (const name of type.keys()) expect(help.has(name)).toBe(true);
    for (const [name, t] of type) {
      if (t === 'counter') expect(name.endsWith('_total')).toBe(true);
    }
  });

  it('times wrapped API requests by op, unknown ops as "unknown", failures included', async () => {
    const metrics = new NodeMetrics();
    const handler = timeRequests(
      (op) =>
        op === 'boom'
          ? Promise.reject(new ApiError({ code: 'INTERNAL', message: 'x', retryable: false }))
          : Promise.resolve(encodeOk({})),
      metrics,
      ['get', 'putStart'],
    );
    await handler('get', new Uint8Array());
    await handler('get', new Uint8Array());
    await handler('nope', new Uint8Array());
    await expect(handler('boom', new Uint8Array())).rejects.toThrow();
    const series = metrics.requests.samples();
    expect(series.map((s) => [s.labels?.['op'], s.counts.reduce((a, b) => a + b, 0)])).toEqual([
      ['get', 2],
      ['unknown', 2],
    ]);
  });
});

/** Just what readiness and the verification counters read from a runtime. */
function fakeRuntime(opts: {
  role: string;
  serving?: boolean;
  appliedSeq?: number;
  logLastSeq?: number;
  verificationHealthy?: boolean;
  logEndKnown?: boolean;
  verificationStats?: unknown;
  verification?: unknown;
  cutOff?: string;
  refused?: string;
}): NodeRuntime {
  return {
    serving: opts.serving ?? false,
    ...(opts.verificationStats === undefined ? {} : { verificationStats: opts.verificationStats }),
    status: () => ({
      role: opts.role,
      appliedSeq: opts.appliedSeq ?? 0,
      logLastSeq: opts.logLastSeq ?? 0,
      ...(opts.verification === undefined ? {} : { verification: opts.verification }),
      ...(opts.cutOff === undefined ? {} : { cutOff: opts.cutOff }),
      ...(opts.refused === undefined ? {} : { refused: opts.refused }),
    }),
    actor: {
      getSnapshot: () => ({
        context: {
          verificationHealthy: opts.verificationHealthy ?? true,
          logEndKnown: opts.logEndKnown ?? true,
        },
      }),
    },
  } as unknown as NodeRuntime;
}

describe('readiness', () => {
  it('a primary is ready only while its API listener is up', () => {
    expect(readiness(fakeRuntime({ role: 'primary', serving: true }), 10)).toEqual({
      ready: true,
      role: 'primary',
    });
    expect(readiness(fakeRuntime({ role: 'primary', serving: false }), 10)).toMatchObject({
      ready: false,
      reason: 'the API listener is not up',
    });
  });

  it('a standby is ready while eligible: lag within the limit and verification healthy', () => {
    const standby = (lag: number, verificationHealthy = true) =>
      readiness(
        fakeRuntime({
          role: 'standby',
          appliedSeq: 100,
          logLastSeq: 100 + lag,
          verificationHealthy,
        }),
        10,
      );
    expect(standby(10).ready).toBe(true);
    expect(standby(11)).toMatchObject({ ready: false, reason: 'lag 11 exceeds 10 entries' });
    expect(standby(0, false)).toMatchObject({
      ready: false,
      reason: 'verification is not healthy',
    });
  });

  // Regression (failover bench): a standby restarted empty answered ready (lag 0 of a log end
  // of 0) until its follower first read the log's bounds; a rolling restart went on to the
  // next node while this one was 50,000 entries behind, and a switchover then waited 1 s.
  it('a standby whose follower has not yet read where the log ends is not ready', () => {
    expect(
      readiness(
        fakeRuntime({ role: 'standby', appliedSeq: 0, logLastSeq: 0, logEndKnown: false }),
        10,
      ),
    ).toEqual({ ready: false, role: 'standby', reason: "the log's end is not known yet" });
  });

  it('a standby cut off from the log, or a node stopping because it cannot serve, is not ready whatever its lag', () => {
    expect(
      readiness(fakeRuntime({ role: 'standby', cutOff: 'cannot read the log: timeout' }), 10),
    ).toEqual({
      ready: false,
      role: 'standby',
      reason: 'cut off from the log: cannot read the log: timeout',
    });
    expect(
      readiness(fakeRuntime({ role: 'standby', refused: "this node's OpLog key ..." }), 10),
    ).toMatchObject({ ready: false, reason: "this node's OpLog key ..." });
  });

  it('every other role is not ready', () => {
    for (const role of ['starting', 'syncing', 'candidate', 'fenced', 'stopping', 'stopped']) {
      expect(readiness(fakeRuntime({ role }), 10)).toEqual({
        ready: false,
        role,
        reason: `the node is ${role}`,
      });
    }
  });
});

describe('verificationCounters', () => {
  it('reads runtime.verificationStats, else status.verification, else nothing', () => {
    expect(verificationCounters(fakeRuntime({ role: 'standby' }))).toBeUndefined();
    expect(
      verificationCounters(
        fakeRuntime({ role: 'standby', verification: { rounds: 3, lastRoundAt: 'x', repairs: 1 } }),
      ),
    ).toEqual({ rounds: 3, repairs: 1 });
    expect(
      verificationCounters(
        fakeRuntime({
          role: 'standby',
          verificationStats: { keysChecked: 50, fullSyncs: 2 },
          verification: { rounds: 3 },
        }),
      ),
    ).toEqual({ keysChecked: 50, fullSyncs: 2 });
  });
});

describe('splitHostPort', () => {
  it('reads host:port, a bare port and bracketed IPv6', () => {
    expect(splitHostPort('0.0.0.0:8080')).toEqual(['0.0.0.0', 8080]);
    expect(splitHostPort('9000')).toEqual(['127.0.0.1', 9000]);
    expect(splitHostPort(':0')).toEqual(['127.0.0.1', 0]);
    expect(splitHostPort('[::1]:7000')).toEqual(['::1', 7000]);
  });
});
