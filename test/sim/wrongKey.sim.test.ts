/**
 * Deterministic simulation, named scenarios: a member with a wrong OpLog key. The process's
 * start-up check refuses it; one that got past the check (the cluster moved to another key
 * while it ran) passes over every primary's message, so it must never count as caught up nor
 * become primary, and exits once the cluster's record says its key is not the cluster's. The
 * cluster keeps a primary and loses no acknowledged write (every invariant of simChecker.ts).
 */
import { describe, expect, it } from 'vitest';
import { runSchedule, type Schedule, type Step } from './schedule.ts';

function schedule(steps: readonly Step[], nodes: number): Schedule {
  const clocks = Array.from({ length: nodes }, () => ({ offsetMs: 0, rate: 1 }));
  return { nodes, seed: 1, clocks, steps };
}

/** A schedule the random runs found (shrunk): one node per clock rate, no offsets, seed 0. */
function found(rates: readonly number[], steps: readonly Step[]): Schedule {
  return {
    nodes: rates.length,
    seed: 0,
    clocks: rates.map((rate) => ({ offsetMs: 0, rate })),
    steps,
  };
}

const putStart = (key: number, client = 0): Step => ({ k: 'cmd', client, op: 'putStart', key });

describe('a member with a wrong OpLog key never becomes primary', () => {
  it('started with a wrong key, a standby refuses to start; the primary goes on', async () => {
    const stats = await runSchedule(
      schedule(
        [
          putStart(0),
          { k: 'wrongKey', n: -2, atStart: true },
          putStart(1, 1),
          { k: 'wait', ms: 1500 },
          putStart(2, 2),
        ],
        2,
      ),
    );
    // Refused at the step and again when the faults end (every stopped node restarts).
    expect(stats.events.get('refusedAtStart')).toBe(2);
    expect(stats.acked).toBeGreaterThanOrEqual(3 + 3);
  });

  it('past the start check, a standby exits before it can promote; the other standby takes over', async () => {
    const stats = await runSchedule(
      schedule(
        [
          putStart(0),
          { k: 'wrongKey', n: -2, atStart: false },
          putStart(1, 1),
          // The primary dies while the wrong-key member may still run: it must not win.
          { k: 'crash', n: -1 },
          { k: 'wait', ms: 3500 },
          putStart(2, 2),
          { k: 'wait', ms: 500 },
        ],
        3,
      ),
    );
    expect(stats.epochs).toBe(2);
    expect(stats.acked).toBeGreaterThanOrEqual(3 + 3);
  });

  // Found by the random schedules (seed -1112217962, shrunk): n2 got past the start check with
  // a wrong key, restored from a checkpoint, and read no primary's message before it campaigned
  // (only an outsider's garbage, which names no key), so it passed over nothing; it promoted and
  // acknowledged a write n1 could not read. It must read the cluster's record before promoting.
  it('a wrong-key member restored from a checkpoint that read no primary message refuses to promote', async () => {
    const stats = await runSchedule({
      nodes: 2,
      seed: 0,
      clocks: [
        { offsetMs: 0, rate: 1 },
        { offsetMs: -2550, rate: 1 },
      ],
      steps: [
        { k: 'wrongKey', n: 3, atStart: false },
        { k: 'wait', ms: 248 },
        { k: 'wait', ms: 104 },
        { k: 'crash', n: -1 },
        { k: 'cmd', client: 0, op: 'putStart', key: 0 },
        { k: 'outsider', what: 'garbage', ahead: 1, key: 0 },
        { k: 'cut', n: 0, what: 'etcd' },
      ],
    });
    expect(stats.epochs).toBe(2);
  });

  it('the primary itself restarts with a wrong key past the start check: a member with the key takes over', async () => {
    const stats = await runSchedule(
      schedule(
        [
          putStart(0),
          { k: 'wrongKey', n: -1, atStart: false },
          { k: 'wait', ms: 3500 },
          putStart(1, 1),
          { k: 'wait', ms: 500 },
        ],
        2,
      ),
    );
    expect(stats.epochs).toBe(2);
  });

  // Counterexample of the 20,000-schedule run (seed -376320270, after 10,732 schedules): n4 won
  // the leader key cut off from NATS and was promoting when the wrongKey step restarted it in
  // the same turn. Its old incarnation's lease lives one TTL after that restart, as etcd keeps
  // a dead process's lease; the world counted from the win instead, since the holder was never
  // seen down between two turns. The count now starts again when the holder restarts.
  it('a member restarted with a wrong key while promoting holds the leader key one TTL after the restart', async () => {
    await runSchedule(
      found(
        [1, 1, 1, 1.02],
        [
          { k: 'cut', n: 3, what: 'nats' },
          { k: 'cmd', client: 0, op: 'putStart', key: 0 },
          { k: 'wait', ms: 1169 },
          { k: 'loss', rate: 0 },
          { k: 'wait', ms: 378 },
          { k: 'cmd', client: 0, op: 'putStart', key: 0 },
          { k: 'wrongKey', n: -1, atStart: false },
          { k: 'crash', n: 0 },
        ],
      ),
    );
  });

  // Found by the random schedules (seed 523123322, shrunk; CI, Node 24): n4 ran with a wrong
  // key, full-synced from the primary (no key needed), then passed over the new primary's fence
  // while etcd was cut off from it, so it could not read the cluster's key record; the watch only
  // tried again "at the next such message", none came, and n4 stayed a standby one entry behind
  // after the faults ended. A failed read of the record is tried again on a timer.
  it('a wrong-key standby that could not read the key record when it passed over a message finds out once etcd answers, with no further message', async () => {
    const stats = await runSchedule(
      found(
        [0.999, 1, 1, 1.02],
        [
          { k: 'wrongKey', n: -1, atStart: false },
          { k: 'wait', ms: 1916 },
          { k: 'wrongKey', n: 0, atStart: false },
          { k: 'cut', n: 3, what: 'etcd' },
          { k: 'switchover', n: 0 },
        ],
      ),
    );
    expect(stats.events.get('oplogKeyCheckFailed')).toBeGreaterThanOrEqual(1);
    expect(stats.events.get('refused')).toBe(1);
  });

  // Found by the random schedules (seed -8604684, shrunk): the only good node was stopped while
  // the other refused to start with a wrong key; its handover waited 3 s for a standby, so when
  // the faults ended (every stopped node restarts) it was still stopping and was never started
  // again: no primary, a liveness failure of the harness. A node still stopping at the end of the
  // faults restarts once it has stopped.
  it('a node still stopping when the faults end restarts once it has stopped', async () => {
    const stats = await runSchedule(
      found(
        [1, 1],
        [
          { k: 'wrongKey', n: -1, atStart: false },
          { k: 'wait', ms: 1751 },
          putStart(0),
          putStart(0),
          { k: 'crash', n: 0 },
          { k: 'wrongKey', n: -1, atStart: true },
          { k: 'drift', n: 0, rate: 0.5 },
          { k: 'stop', n: 3 },
          { k: 'wait', ms: 1000 },
        ],
      ),
    );
    expect(stats.recoveryMs).toBeGreaterThan(0);
  });

  // Found by the random schedules (seed -1647627628, 20,000 runs, shrunk): the primary, whose
  // clock runs at half speed, was stopped while the only other node restarted with a wrong key
  // and exited. With nobody to hand over to, the handover still waited its whole 3 s for a
  // standby, 6 s of the world's time, and no primary served within TTL + the slack after the
  // faults. A stopping primary now gives up the wait once no other node has been registered for
  // 500 ms of its clock.
  it('a stopping primary alone in the cluster does not wait the handover timeout for a standby', async () => {
    const stats = await runSchedule(
      found(
        [1, 1.02],
        [
          { k: 'drift', n: -1, rate: 0.5 },
          { k: 'wrongKey', n: 0, atStart: false },
          { k: 'wait', ms: 1820 },
          { k: 'stop', n: -1 },
        ],
      ),
    );
    expect(stats.recoveryMs).toBeGreaterThan(0);
    expect(stats.events.get('refused')).toBe(1);
  });
});
