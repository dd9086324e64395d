// The node's HTTP endpoints on real node processes: /healthz, /readyz, /metrics, /status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type UnderstudyClient } from '../../src/client/client.ts';
import type { NodeFleet, NodeHandle } from '../../src/tools/localCluster/nodeFleet.ts';
import { startTwoNodes, stopAll } from '../harness/e2eCluster.ts';

const CLUSTER = 'http';

const cleanups: Array<() => Promise<void>> = [];
let fleet: NodeFleet;
let client: UnderstudyClient;
let primary: NodeHandle;
let standby: NodeHandle;

beforeAll(async () => {
  // No segments: a test below mounts its own.
  ({ fleet, client, primary, standby } = await startTwoNodes(cleanups, CLUSTER, { segments: [] }));
}, 120_000);

afterAll(() => stopAll(cleanups));

async function get(node: NodeHandle, path: string): Promise<{ code: number; body: string }> {
  const res = await fetch(`${node.url}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { code: res.status, body: await res.text() };
}

/** Polls `path` until `match` holds; fails with the last answer after `timeoutMs`. */
async function waitFor(
  node: NodeHandle,
  path: string,
  match: (r: { code: number; body: string }) => boolean,
  timeoutMs = 30_000,
): Promise<{ code: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  let last: { code: number; body: string } | undefined;
  while (Date.now() < deadline) {
    last = await get(node, path).catch(() => undefined);
    if (last !== undefined && match(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${node.id}${path} never matched; last: ${JSON.stringify(last)}`);
}

/** The value of one series in a Prometheus text body (labels as written, e.g. `{op="get"}`). */
function series(body: string, name: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('node HTTP', () => {
  it('/healthz answers 200 on every node', async () => {
    for (const node of fleet.nodes) {
      const r = await get(node, '/healthz');
      expect(r.code).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ ok: true });
    }
  });

  it('/readyz: the serving primary and the caught-up standby are ready', async () => {
    const p = await waitFor(primary, '/readyz', (r) => r.code === 200);
    expect(JSON.parse(p.body)).toMatchObject({ ready: true, role: 'primary' });
    const s = await waitFor(standby, '/readyz', (r) => r.code === 200);
    expect(JSON.parse(s.body)).toMatchObject({ ready: true, role: 'standby' });
  });

  it('/metrics exposes state, seqs, lag, apply rate, latencies, verification, failovers, fences', async () => {
    for (const node of ['s1', 's2']) await client.mountSegment(`${node}-seg`, node, 1 << 30);
    for (let i = 0; i < 20; i++) await client.putStart(`k${i}`, 1024, 2);
    const lastSeq = (await primary.status()).appliedSeq;
    await standby.waitForStatus((s) => s.appliedSeq >= lastSeq, 30_000);

    const p = await get(primary, '/metrics');
    expect(p.code).toBe(200);
    const pm = p.body;
    expect(series(pm, 'understudy_node_state{state="primary"}')).toBe(1);
    expect(series(pm, 'understudy_node_state{state="standby"}')).toBe(0);
    expect(series(pm, 'understudy_epoch')).toBeGreaterThan(0);
    expect(series(pm, 'understudy_applied_seq')).toBeGreaterThanOrEqual(lastSeq);
    expect(series(pm, 'understudy_promotions_total')).toBe(1);
    expect(series(pm, 'understudy_fences_total')).toBe(0);
    expect(series(pm, 'understudy_request_duration_seconds_count{op="putStart"}')).toBe(20);
    expect(series(pm, 'understudy_request_duration_seconds_count{op="mountSegment"}')).toBe(2);
    expect(pm).toContain('understudy_request_duration_seconds_bucket{op="putStart",le="+Inf"} 20');
    for (const name of [
      'understudy_log_last_seq',
      'understudy_lag_entries',
      'understudy_applied_entries_total',
      'understudy_apply_rate',
      'understudy_verification_rounds_total',
      'understudy_verification_failed_rounds_total',
      'understudy_verification_keys_checked_total',
      'understudy_verification_mismatches_total',
      'understudy_verification_repairs_total',
      'understudy_verification_full_syncs_total',
    ]) {
      expect(pm).toContain(`# TYPE ${name} `);
      expect(series(pm, name), name).toBeGreaterThanOrEqual(0);
    }

    const s = await get(standby, '/metrics');
    const sm = s.body;
    expect(series(sm, 'understudy_node_state{state="standby"}')).toBe(1);
    expect(series(sm, 'understudy_node_state{state="primary"}')).toBe(0);
    expect(series(sm, 'understudy_epoch')).toBe(series(pm, 'understudy_epoch'));
    expect(series(sm, 'understudy_applied_seq')).toBeGreaterThanOrEqual(lastSeq);
    // the standby folded the writes after its first sample: they count as applied
    expect(series(sm, 'understudy_applied_entries_total')).toBeGreaterThanOrEqual(22);
  });

  it('/status answers JSON with the role, and the digest on request', async () => {
    const r = await get(primary, '/status?digest=1');
    expect(r.code).toBe(200);
    const status = JSON.parse(r.body) as Record<string, unknown>;
    expect(status).toMatchObject({ nodeId: primary.id, role: 'primary' });
    expect(status['digest']).toMatch(/^[0-9a-f]{8}$/);
    expect((await get(primary, '/nope')).code).toBe(404);
  });
});
