import { describe, expect, it } from 'vitest';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import {
  FIRST_WAITING_MS,
  WAITING_EVERY_MS,
  Waiting,
  type WaitingDeps,
} from '../../src/node/waitingFor.ts';

interface Line {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
  readonly at: number;
}

function world(): { clock: SimClock; deps: WaitingDeps; lines: Line[] } {
  const clock = new SimClock(0);
  const lines: Line[] = [];
  const log =
    (level: Line['level']) =>
    (fields: Record<string, unknown>, msg: string): void => {
      lines.push({ level, fields, msg, at: clock.now() });
    };
  return {
    clock,
    deps: { clock, logger: { info: log('info'), warn: log('warn'), error: log('error') } },
    lines,
  };
}

/** Advances `clock` by `ms` in 10 ms steps, letting promise callbacks run between them. */
async function run(clock: SimClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 10) await clock.advanceAsync(10);
}

describe('Waiting: a starting node says what it waits for', () => {
  it('names a step that hangs within a second, then every few seconds, and in current', async () => {
    const { clock, deps, lines } = world();
    const waiting = new Waiting();
    let release!: (value: string) => void;
    const done = waiting.for(
      deps,
      'etcd at http://10.0.0.1:2379 (a lease)',
      new Promise<string>((r) => (release = r)),
    );
    expect(waiting.current).toBe('etcd at http://10.0.0.1:2379 (a lease)');
    await run(clock, FIRST_WAITING_MS);
    expect(lines.map((l) => [l.at, l.msg])).toEqual([
      [FIRST_WAITING_MS, 'waiting for etcd at http://10.0.0.1:2379 (a lease)'],
    ]);
    await run(clock, 2 * WAITING_EVERY_MS);
    expect(lines.map((l) => l.at)).toEqual([
      FIRST_WAITING_MS,
      FIRST_WAITING_MS + WAITING_EVERY_MS,
      FIRST_WAITING_MS + 2 * WAITING_EVERY_MS,
    ]);
    release('ok');
    await expect(done).resolves.toBe('ok');
    expect(waiting.current).toBeUndefined();
    await run(clock, 3 * WAITING_EVERY_MS);
    expect(lines).toHaveLength(3);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('says nothing about a step that settles within the second', async () => {
    const { clock, deps, lines } = world();
    const waiting = new Waiting();
    const done = waiting.for(
      deps,
      'NATS',
      new Promise<number>((r) => clock.setTimeout(() => r(1), 900)),
    );
    await run(clock, 2000);
    await expect(done).resolves.toBe(1);
    expect(lines).toEqual([]);
  });

  it('retries: a warning per failed attempt with the error and the pause, then connected', async () => {
    const { clock, deps, lines } = world();
    const waiting = new Waiting();
    let attempts = 0;
    const done = waiting.retry(deps, {
      what: 'NATS at nats://h:4222',
      event: 'nats',
      attempt: () => {
        attempts++;
        return attempts < 4 ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve('nc');
      },
    });
    await run(clock, 4000);
    await expect(done).resolves.toBe('nc');
    expect(lines.map((l) => [l.level, l.fields['event'], l.msg])).toEqual([
      [
        'warn',
        'natsUnavailable',
        'waiting for NATS at nats://h:4222: ECONNREFUSED; retrying in 500 ms',
      ],
      [
        'warn',
        'natsUnavailable',
        'waiting for NATS at nats://h:4222: ECONNREFUSED; retrying in 1000 ms',
      ],
      [
        'warn',
        'natsUnavailable',
        'waiting for NATS at nats://h:4222: ECONNREFUSED; retrying in 2000 ms',
      ],
      ['info', 'natsConnected', 'connected to NATS at nats://h:4222'],
    ]);
  });

  it('retries: an attempt that hangs is named within a second with the last error; a fatal error rejects at once', async () => {
    const { clock, deps, lines } = world();
    const waiting = new Waiting();
    const hangs = waiting.retry(deps, {
      what: 'etcd at http://e:2379',
      event: 'etcd',
      attempt: () => new Promise<never>(() => undefined),
    });
    void hangs;
    await run(clock, FIRST_WAITING_MS);
    expect(lines.map((l) => [l.fields['event'], l.msg])).toEqual([
      ['waiting', 'waiting for etcd at http://e:2379'],
    ]);
    const refused = new Waiting().retry(deps, {
      what: 'NATS at nats://h:4222',
      event: 'nats',
      attempt: () => Promise.reject(new Error('Authorization Violation')),
      fatal: (err) => new Error(`refused the login: ${String(err)}`),
    });
    await expect(refused).rejects.toThrow('refused the login: Error: Authorization Violation');
  });
});
