import { describe, expect, it } from 'vitest';
import { LOGGED_TIME_MAX_RATE, LoggedClock } from '../../src/node/state/loggedClock.ts';

const HOUR = 60 * 60 * 1000;
const T0 = 1_700_000_000_000;

/** A clock whose monotonic and wall readings the test moves separately. */
function clock(): { mono: number; wall: number; monotonicNow(): number; wallNow(): number } {
  return {
    mono: 5_000,
    wall: T0,
    monotonicNow() {
      return this.mono;
    },
    wallNow() {
      return this.wall;
    },
  };
}

function tick(c: ReturnType<typeof clock>, ms: number): void {
  c.mono += ms;
  c.wall += ms;
}

describe('LoggedClock: the ts a primary stamps', () => {
  it('follows a steady wall clock', () => {
    const c = clock();
    const logged = new LoggedClock(c, T0 - 10);
    tick(c, 10);
    expect(logged.stamp()).toBe(T0 + 10);
    tick(c, 250);
    expect(logged.stamp()).toBe(T0 + 260);
  });

  it('takes the wall clock for the first entry of a log', () => {
    const c = clock();
    c.wall = T0 + 2 * HOUR;
    expect(new LoggedClock(c, 0).stamp()).toBe(T0 + 2 * HOUR);
  });

  it('a wall clock stepped 2 h ahead moves logged time no faster than the rate allows', () => {
    const c = clock();
    const logged = new LoggedClock(c, T0);
    tick(c, 1000);
    expect(logged.stamp()).toBe(T0 + 1000);
    c.wall += 2 * HOUR;
    tick(c, 100);
    expect(logged.stamp()).toBe(T0 + 1000 + LOGGED_TIME_MAX_RATE * 100);
    // A minute later it is at most two minutes on, far from the hour that sweeps sessions.
    tick(c, 60_000);
    expect(logged.stamp()).toBe(T0 + 1000 + LOGGED_TIME_MAX_RATE * 60_100);
    // It catches up with the wall clock within 2 h, and follows it from then on.
    tick(c, 2 * HOUR);
    expect(logged.stamp()).toBe(c.wall);
    tick(c, 5);
    expect(logged.stamp()).toBe(c.wall);
  });

  it('a new primary whose wall clock is 2 h ahead starts from the logged time it inherits', () => {
    const c = clock();
    c.wall += 2 * HOUR;
    const logged = new LoggedClock(c, T0);
    expect(logged.stamp()).toBe(T0);
    tick(c, 40);
    expect(logged.stamp()).toBe(T0 + LOGGED_TIME_MAX_RATE * 40);
  });

  it('a wall clock behind holds logged time still, never back, and allows no jump after', () => {
    const c = clock();
    const logged = new LoggedClock(c, T0);
    c.wall -= 2 * HOUR;
    for (let i = 0; i < 10; i++) {
      tick(c, 60_000);
      expect(logged.stamp()).toBe(T0);
    }
    // Stepped forward again after ten minutes: the ten minutes held back are not spent at once.
    c.wall += 2 * HOUR;
    tick(c, 10);
    expect(logged.stamp()).toBe(T0 + LOGGED_TIME_MAX_RATE * 10);
  });

  it('stamps closer together than a millisecond lose no time to rounding', () => {
    const c = clock();
    c.wall += HOUR;
    const logged = new LoggedClock(c, T0);
    for (let i = 0; i < 8000; i++) {
      c.mono += 0.125;
      logged.stamp();
    }
    expect(logged.stamp()).toBe(T0 + LOGGED_TIME_MAX_RATE * 1000);
  });
});
