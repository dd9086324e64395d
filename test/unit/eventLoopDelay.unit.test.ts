import { describe, expect, it } from 'vitest';
import { EventLoopDelay } from '../../src/observe/eventLoopDelay.ts';
import { NodeMetrics } from '../../src/observe/metrics.ts';
import { renderPrometheus } from '../../src/observe/prometheusText.ts';

/** Keeps the event loop busy for `ms` (a stall). */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('EventLoopDelay', () => {
  it('shows a stall of the loop as its max, in ms', async () => {
    const loop = new EventLoopDelay(10_000, 1000, 10);
    try {
      await tick(50);
      stall(200);
      await tick(50);
      const { maxMs, p99Ms, samples } = loop.summary();
      expect(maxMs).toBeGreaterThanOrEqual(150);
      expect(p99Ms).toBeGreaterThan(0);
      expect(p99Ms).toBeLessThanOrEqual(maxMs);
      expect(samples).toBeGreaterThan(0);
    } finally {
      loop.stop();
    }
  });

  it('shows the longest garbage-collection pause beside the stall', async () => {
    const loop = new EventLoopDelay(10_000, 1000, 10);
    try {
      expect(loop.summary().gcMaxMs).toBe(0);
      // Enough short-lived garbage for the young generation to be collected a few times.
      let kept = 0;
      for (let round = 0; round < 20; round++) {
        const garbage = Array.from({ length: 200_000 }, (_, i) => ({ i }));
        kept += garbage.length;
      }
      expect(kept).toBe(4_000_000);
      // The observer hears of GCs after them, from the loop.
      const until = performance.now() + 5000;
      while (loop.summary().gcMaxMs === 0 && performance.now() < until) await tick(10);
      expect(loop.summary().gcMaxMs).toBeGreaterThan(0);
    } finally {
      loop.stop();
    }
  });

  it('forgets a stall once it is older than the window', async () => {
    let now = 0;
    const loop = new EventLoopDelay(2000, 1000, 10, () => now);
    try {
      await tick(30);
      stall(150);
      await tick(30);
      expect(loop.summary().maxMs).toBeGreaterThanOrEqual(100);
      now = 1000; // the stall's slice closes
      loop.tick();
      await tick(50);
      expect(loop.summary().maxMs).toBeGreaterThanOrEqual(100);
      now = 3500; // that slice is out of the 2 s window; the new one holds no stall
      expect(loop.summary().maxMs).toBeLessThan(100);
    } finally {
      loop.stop();
    }
  });

  it('is shown on /metrics as the p99 and max gauges, in seconds', async () => {
    const loop = new EventLoopDelay();
    try {
      await tick(30);
      stall(120);
      await tick(30);
      const text = renderPrometheus(
        new NodeMetrics(loop).families({
          nodeId: 'n1',
          role: 'primary',
          roles: ['primary'],
          epoch: 1,
          appliedSeq: 0,
          logLastSeq: 0,
          promotions: 0,
          fences: 0,
          verificationHealthy: true,
          verification: undefined,
        }),
      );
      const max = /^understudy_event_loop_delay_max_seconds (\S+)$/m.exec(text)?.[1];
      const p99 = /^understudy_event_loop_delay_p99_seconds (\S+)$/m.exec(text)?.[1];
      expect(Number(max)).toBeGreaterThanOrEqual(0.08);
      expect(Number(p99)).toBeGreaterThan(0);
      expect(text).toContain('# TYPE understudy_event_loop_delay_max_seconds gauge');
      expect(text).toMatch(/^understudy_gc_pause_max_seconds \S+$/m);
    } finally {
      loop.stop();
    }
  });

  it('is not shown by metrics without it', () => {
    const text = renderPrometheus(
      new NodeMetrics().families({
        nodeId: 'n1',
        role: 'standby',
        roles: ['standby'],
        epoch: 1,
        appliedSeq: 0,
        logLastSeq: 0,
        promotions: 0,
        fences: 0,
        verificationHealthy: true,
        verification: undefined,
      }),
    );
    expect(text).not.toContain('event_loop_delay');
  });
});
