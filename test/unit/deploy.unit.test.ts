// deploy/prometheus and deploy/grafana: the alert rules and the dashboard use metrics a node
// really exports, Prometheus scrapes the compose nodes, and promtool (when installed) checks
// the rules, runs their unit tests and parses every dashboard query.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { NodeMetrics } from '../../src/observe/metrics.ts';
import { renderPrometheus } from '../../src/observe/prometheusText.ts';
import { NODE_ROLES } from '../../src/process/httpServer.ts';
import { NODE_V8_FLAGS } from '../../src/process/packageInfo.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
const rules = (
  parse(read('deploy/prometheus/alerts.yml')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);
const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as {
  rule_files: string[];
  scrape_configs: {
    job_name: string;
    metrics_path: string;
    static_configs: { targets: string[]; labels: { node: string } }[];
  }[];
};
interface Panel {
  readonly title: string;
  readonly datasource: { uid: string };
  readonly targets: { expr: string }[];
}
const dashboard = JSON.parse(read('deploy/grafana/dashboards/understudy.json')) as {
  uid: string;
  panels: Panel[];
};
const queries = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));

/** Every series name a node's /metrics can show (histograms with their suffixes). */
function exportedNames(): Set<string> {
  const metrics = new NodeMetrics();
  metrics.observeRequest('putStart', 0.001);
  const text = renderPrometheus(
    metrics.families({
      nodeId: 'n1',
      role: 'primary',
      roles: NODE_ROLES,
      epoch: 1,
      appliedSeq: 1,
      logLastSeq: 1,
      promotions: 0,
      fences: 0,
      verificationHealthy: true,
      verification: {},
      checkpoints: {
        written: 1,
        failed: 0,
        corrupt: 0,
        lastWriteMs: 1,
        lastWriteBytes: 1,
        newest: { createdAt: 0, bytes: 1, appliedSeq: 1 },
        failClosed: undefined,
      },
    }),
  );
  return new Set(
    text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0] ?? ''),
  );
}

const used = (expr: string): string[] => expr.match(/\bunderstudy_[a-z_]+/g) ?? [];

describe('alert rules and dashboard', () => {
  const exported = exportedNames();

  it('use only metrics a node exports, and states it has', () => {
    for (const expr of [...rules.map((r) => r.expr), ...queries]) {
      for (const name of used(expr)) expect(exported.has(name), `${name} in ${expr}`).toBe(true);
      for (const [, state] of expr.matchAll(/state="(\w+)"/g)) {
        expect(NODE_ROLES, expr).toContain(state);
      }
    }
  });

  it('alert on a missing primary, lag, verification failures, fences, skipped messages and foreign entries', () => {
    const byMetric = (metric: string): string[] =>
      rules.filter((r) => r.expr.includes(metric)).map((r) => r.alert);
    expect(byMetric('understudy_node_state')).toContain('UnderstudyNoPrimary');
    expect(byMetric('understudy_lag_entries')).toEqual(['UnderstudyReplicationLag']);
    expect(byMetric('understudy_verification_failed_rounds_total')).toEqual([
      'UnderstudyVerificationFailing',
    ]);
    expect(byMetric('understudy_verification_mismatches_total')).toEqual([
      'UnderstudyVerificationMismatch',
    ]);
    expect(byMetric('understudy_fences_total')).toEqual(['UnderstudyFenced']);
    expect(byMetric('understudy_log_messages_skipped_total')).toEqual([
      'UnderstudyLogMessagesSkipped',
    ]);
    expect(byMetric('understudy_log_entries_foreign_total')).toEqual([
      'UnderstudyForeignLogEntries',
    ]);
    expect(byMetric('understudy_checkpoint_age_seconds')).toEqual(['UnderstudyCheckpointStale']);
    expect(byMetric('understudy_checkpoint_failures_total')).toEqual([
      'UnderstudyCheckpointFailures',
    ]);
    expect(byMetric('understudy_failed_closed')).toEqual(['UnderstudyFailedClosed']);
    expect(rules.map((r) => r.alert)).toContain('UnderstudyNodeMissing');
    for (const rule of rules) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
    }
  });

  it('the operations guide has a section for every alert it points to', () => {
    const guide = read('docs/operations.md');
    for (const rule of rules) {
      expect(guide, rule.alert).toContain(rule.alert);
      for (const [, section] of (rule.annotations?.['description'] ?? '').matchAll(
        /"([^"]+)" in docs\/operations\.md/g,
      )) {
        expect(guide, `${rule.alert}: section "${section}"`).toMatch(
          new RegExp(`^#+ ${section}$`, 'm'),
        );
      }
    }
  });

  it('Prometheus scrapes the three compose nodes on their --http port, with a node label', () => {
    const [job] = prometheus.scrape_configs;
    expect(job?.job_name).toBe('understudy');
    expect(job?.metrics_path).toBe('/metrics');
    const targets = job?.static_configs.map((c) => [c.targets[0], c.labels.node]);
    expect(targets).toEqual([
      ['node-1:9100', 'node-1'],
      ['node-2:9100', 'node-2'],
      ['node-3:9100', 'node-3'],
    ]);
    expect(prometheus.rule_files).toEqual(['alerts.yml']);
  });

  it('the dashboard has panels for checkpoint age and failures, failed-closed and missing nodes', () => {
    const panelOf = (metric: string): string[] =>
      dashboard.panels
        .filter((p) => p.targets.some((t) => t.expr.includes(metric)))
        .map((p) => p.title);
    expect(panelOf('understudy_checkpoint_age_seconds')).toEqual(['Checkpoint age']);
    expect(panelOf('understudy_checkpoint_failures_total')).toEqual([
      'Checkpoint writes and failures',
    ]);
    expect(panelOf('understudy_failed_closed')).toEqual(['Failed closed and missing nodes']);
    expect(panelOf('up{job="understudy"} == 0')).toEqual(['Failed closed and missing nodes']);
  });

  it("the dashboard queries Grafana's provisioned Prometheus", () => {
    const provisioned = parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { uid: string; url: string }[];
    };
    expect(provisioned.datasources[0]?.url).toBe('http://prometheus:9090');
    expect(dashboard.uid).toBe('understudy');
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid, panel.title).toBe(provisioned.datasources[0]?.uid);
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
    }
  });
});

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const hasPromtool = promtool.status === 0;
const skipped = hasPromtool
  ? ''
  : ' [SKIPPED: promtool is not installed; `apt-get install prometheus` (scripts/ensure-deps.sh does it as root)]';

describe(`promtool${skipped}`, () => {
  const run = (args: string[], cwd = join(root, 'deploy/prometheus')) => {
    const result = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
  };

  it.skipIf(!hasPromtool)('check rules, config, and the rules unit tests', () => {
    for (const args of [
      ['check', 'rules', 'alerts.yml'],
      ['check', 'config', 'prometheus.yml'],
      ['test', 'rules', 'alerts.test.yml'],
    ]) {
      const result = run(args);
      expect(result.status, `promtool ${args.join(' ')}\n${result.output}`).toBe(0);
    }
  });

  it.skipIf(!hasPromtool)('parse every dashboard query', () => {
    // Each query as a recording rule: `promtool check rules` parses its PromQL.
    const dir = mkdtempSync(join(tmpdir(), 'understudy-dashboard-'));
    try {
      const file = join(dir, 'dashboard.rules.yml');
      writeFileSync(
        file,
        JSON.stringify({
          groups: [
            {
              name: 'dashboard',
              rules: queries.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })),
            },
          ],
        }),
      );
      const result = run(['check', 'rules', file], dir);
      expect(result.status, result.output).toBe(0);
      expect(result.output).toContain(`SUCCESS: ${queries.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the V8 flags of a node process', () => {
  it('bin/understudy.js (its #! line), the Dockerfile, the local cluster and `npm run bench` all give NODE_V8_FLAGS', () => {
    const flags = NODE_V8_FLAGS.join(' ');
    expect(read('bin/understudy.js').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(read('Dockerfile'))?.[1];
    expect(JSON.parse(entrypoint ?? '[]')).toEqual(['node', ...NODE_V8_FLAGS, 'bin/understudy.js']);
    expect(read('src/tools/localCluster/nodeFleet.ts')).toContain('...NODE_V8_FLAGS,');
    // The benches run the node's code in their own process too (fold, sync, chunk codec).
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> })
      .scripts;
    expect(scripts.bench).toContain(`node ${flags} `);
  });
});
