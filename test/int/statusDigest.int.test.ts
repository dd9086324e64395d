// A node's `/status?digest=1` over HTTP on a large state: the digest is right, and computing it
// never holds the event loop for a sizeable part of the lease margin (400 ms at a 2 s TTL).
// Regression: it was computed in one go on the loop (0.5-0.9 s at ~207k objects on an idle
// machine), and seven back-to-back requests made a primary miss its lease deadline.
//
// What is measured, for each gap between two ticks of a 10 ms timer, is the CPU time the process
// spent in it, at most the gap's own length (the CPU of V8's helper threads, e.g. parallel GC
// marking, can add up to more than the gap), less the GC pauses inside it: a task that holds the
// loop uses CPU for the whole gap, while a gap in which the process merely waited for a core (a
// loaded machine) uses little. GC pauses are the heap's, measured by the fold and write benches
// (issue 27), not the digest's; without taking them out the full suite on 2 cores once measured
// 206 ms.
import { PerformanceObserver } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { digestHex, shardDigest, stateDigest } from '../../src/domain/log/checksum.ts';
import { foldAll } from '../../src/domain/fold/fold.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { LoggedEvent, MetadataEvent, MetadataState } from '../../src/domain/model/types.ts';
import { NodeHttpServer } from '../../src/process/httpServer.ts';
import { NodeMetrics } from '../../src/observe/metrics.ts';
import type { NodeRuntime } from '../../src/node/nodeRuntime.ts';

const OBJECTS = 150_000;
/** Half the lease margin at a 2 s TTL: a longer hold of the loop fails the test. */
const MAX_LOOP_HOLD_MS = 200;

/** `from` plus `n` objects named `<prefix><i>` (two replicas each), some from a client session. */
function withObjects(from: MetadataState, n: number, prefix: string): MetadataState {
  const logged: LoggedEvent[] = [];
  let seq = from.appliedSeq;
  const push = (event: MetadataEvent, requestNo?: number): void => {
    seq++;
    logged.push({
      seq,
      epoch: 1,
      ts: seq,
      event,
      ...(requestNo === undefined
        ? {}
        : { origin: { sessionId: 'ab'.repeat(16), requestNo, oldestPending: requestNo } }),
    });
  };
  if (from.segments.size === 0) {
    push({ op: 'MOUNT_SEGMENT', segmentId: 's0', nodeId: 'n0', size: 2 ** 40 });
    push({ op: 'MOUNT_SEGMENT', segmentId: 's1', nodeId: 'n1', size: 2 ** 40 });
  }
  const base = from.objectCount * 16;
  for (let i = 0; i < n; i++) {
    const replica = (segmentId: string, nodeId: string) => ({
      segmentId,
      nodeId,
      offset: base + i * 16,
      length: 16,
      status: 'processing' as const,
    });
    push(
      {
        op: 'PUT_START',
        key: `${prefix}${i}`,
        size: 16,
        replicas: [replica('s0', 'n0'), replica('s1', 'n1')],
      },
      i < 10 ? seq + 1 : undefined,
    );
  }
  return foldAll(from, logged);
}

/** Just enough of a runtime for `/status`. */
function runtimeOver(current: () => MetadataState): NodeRuntime {
  return {
    store: {
      get state() {
        return current();
      },
      get appliedSeq() {
        return current().appliedSeq;
      },
    },
    status: () => ({ nodeId: 'n1', role: 'primary', appliedSeq: current().appliedSeq }),
  } as unknown as NodeRuntime;
}

describe('/status?digest on a large state', () => {
  it('answers the right digest while the event loop keeps running', async () => {
    let state = withObjects(emptyState(), OBJECTS, 'k');
    const http = await NodeHttpServer.listen('127.0.0.1:0');
    http.serve(
      runtimeOver(() => state),
      { maxLagForPromotion: 1000, metrics: new NodeMetrics() },
    );
    try {
      // A timer every 10 ms, as the keep-alives and the lease deadline need: the CPU time the
      // process used between two of its ticks, and when (performance.now()).
      const gaps: { from: number; to: number; cpuMs: number }[] = [];
      const pauses: { from: number; to: number }[] = [];
      const gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries())
          pauses.push({ from: e.startTime, to: e.startTime + e.duration });
      });
      gcObserver.observe({ entryTypes: ['gc'] });
      let last = process.cpuUsage();
      let lastAt = performance.now();
      const probe = setInterval(() => {
        const used = process.cpuUsage(last);
        const now = performance.now();
        gaps.push({ from: lastAt, to: now, cpuMs: (used.user + used.system) / 1000 });
        last = process.cpuUsage();
        lastAt = performance.now();
      }, 10);
      const answers: Array<Promise<Record<string, unknown>>> = [];
      const states: MetadataState[] = [];
      // Seven back-to-back requests, each for a state one write further on.
      for (let i = 0; i < 7; i++) {
        state = withObjects(state, 1, `w${i}-`);
        states.push(state);
        answers.push(
          fetch(`${http.url}/status?digest=1${i === 6 ? '&shards=1' : ''}`).then(
            (res) => res.json() as Promise<Record<string, unknown>>,
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const bodies = await Promise.all(answers);
      clearInterval(probe);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the last GC entries arrive
      gcObserver.disconnect();
      const gcIn = (gap: { from: number; to: number }): number =>
        pauses.reduce(
          (sum, p) => sum + Math.max(0, Math.min(p.to, gap.to) - Math.max(p.from, gap.from)),
          0,
        );
      const holds = gaps.map((g) => Math.min(g.cpuMs, g.to - g.from) - gcIn(g));
      expect(Math.max(...holds)).toBeLessThan(MAX_LOOP_HOLD_MS);
      // Each answer is the digest of the state at the seq it names (a request may be served
      // after the next write).
      const bySeq = new Map(states.map((st) => [st.appliedSeq, st]));
      for (const body of bodies) {
        const answered = bySeq.get(body['digestSeq'] as number);
        expect(answered).toBeDefined();
        expect(body['digest']).toBe(digestHex(stateDigest(answered!)));
      }
      const final = bodies[6]!;
      const shards = final['shards'] as string[];
      expect(shards).toHaveLength(1024);
      expect(shards[17]).toBe(digestHex(shardDigest(bySeq.get(final['digestSeq'] as number)!, 17)));
    } finally {
      await http.close();
    }
  }, 120_000);
});
