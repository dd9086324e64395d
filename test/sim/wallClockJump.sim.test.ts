/**
 * Deterministic simulation, named scenarios: a wall clock stepped hours ahead (monotonic clock
 * untouched) on the primary, or on a standby that then promotes. Idle sessions expire by
 * logged time; were `ts` the wall reading, the first entry stamped 2 h ahead would sweep every
 * session, and a client's retry of a write whose reply was lost would be applied again (here,
 * a putStart answered OBJECT_EXISTS for its own write). Logged time must not jump: the retry
 * gets the original answer, the request is in the log once, and no session is swept.
 */
import { describe, expect, it } from 'vitest';
import { runSchedule, type Schedule, type Step } from './schedule.ts';

const HOURS = 60 * 60 * 1000;

function schedule(steps: readonly Step[], nodes: number): Schedule {
  const clocks = Array.from({ length: nodes }, () => ({ offsetMs: 0, rate: 1 }));
  return { nodes, seed: 1, clocks, steps };
}

const putStart = (key: number, client = 0): Step => ({ k: 'cmd', client, op: 'putStart', key });

describe('wall-clock jump: logged time does not jump, and exactly-once holds', () => {
  it('the primary jumps +2 h: a retry of an applied putStart gets its original answer', async () => {
    const stats = await runSchedule(
      schedule(
        [
          { k: 'dropReplies', count: 1 },
          // Applied at the old logged time; its reply is lost, the client retries after 400 ms.
          putStart(0),
          { k: 'clockStep', n: -1, ms: 2 * HOURS },
          // Stamped by the primary 2 h ahead, before the retry arrives.
          putStart(1, 1),
          { k: 'wait', ms: 1500 },
          putStart(2, 2),
          { k: 'wait', ms: 500 },
        ],
        3,
      ),
    );
    expect(stats.sessions).toBe(stats.sessionsLogged);
    expect(stats.sessionsLogged).toBe(3);
  });

  it('a standby 2 h ahead promotes after the primary is killed: the retry gets its original answer', async () => {
    const stats = await runSchedule(
      schedule(
        [
          putStart(0),
          { k: 'clockStep', n: -2, ms: 2 * HOURS },
          { k: 'dropReplies', count: 1 },
          // Applied by the first primary; its reply is lost and the primary dies.
          putStart(1),
          { k: 'crash', n: -1 },
          // The standby promotes (its EPOCH fence is stamped by it) and takes the retry.
          { k: 'wait', ms: 3500 },
          putStart(2, 1),
          { k: 'wait', ms: 500 },
        ],
        2,
      ),
    );
    expect(stats.epochs).toBeGreaterThanOrEqual(2);
    expect(stats.sessions).toBe(stats.sessionsLogged);
    expect(stats.sessionsLogged).toBe(2);
  });

  it('the generated step: the primary jumps +2 h between a served write and its retry', async () => {
    const stats = await runSchedule(
      schedule(
        [
          { k: 'clockJump', n: -1, ms: 2 * HOURS, client: 0, key: 0 },
          { k: 'wait', ms: 1500 },
        ],
        3,
      ),
    );
    expect(stats.sessions).toBe(stats.sessionsLogged);
  });

  it('the primary jumps +3 h and then back: the sessions stay, and so does exactly-once', async () => {
    const stats = await runSchedule(
      schedule(
        [
          { k: 'dropReplies', count: 1 },
          putStart(0),
          { k: 'clockStep', n: -1, ms: 3 * HOURS },
          putStart(1, 1),
          { k: 'wait', ms: 1500 },
          { k: 'dropReplies', count: 1 },
          putStart(2),
          { k: 'clockStep', n: -1, ms: -3 * HOURS },
          putStart(3, 1),
          { k: 'wait', ms: 1500 },
        ],
        3,
      ),
    );
    expect(stats.sessions).toBe(stats.sessionsLogged);
    expect(stats.sessionsLogged).toBe(2);
  });
});
