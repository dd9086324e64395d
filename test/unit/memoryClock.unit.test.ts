import { describe, expect, it } from 'vitest';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { systemClock } from '../../src/adapters/systemClock.ts';

describe('SimClock', () => {
  it('fires due timers in time order, ties in creation order, each at its due time', () => {
    const clock = new SimClock(100);
    const fired: [string, number][] = [];
    const record = (name: string) => () => fired.push([name, clock.now()]);
    clock.setTimeout(record('c'), 30);
    clock.setTimeout(record('a'), 10);
    clock.setTimeout(record('b1'), 20);
    clock.setTimeout(record('b2'), 20);
    clock.setTimeout(record('late'), 100);
    expect(clock.pendingTimers()).toBe(5);
    clock.advance(30);
    expect(fired).toEqual([
      ['a', 110],
      ['b1', 120],
      ['b2', 120],
      ['c', 130],
    ]);
    expect(clock.now()).toBe(130);
    expect(clock.pendingTimers()).toBe(1);
    expect(clock.nextDueMs()).toBe(200);
  });

  it('runs timers set while advancing when they fall due within the step', () => {
    const clock = new SimClock();
    const fired: number[] = [];
    const tick = (): void => {
      fired.push(clock.now());
      clock.setTimeout(tick, 10);
    };
    clock.setTimeout(tick, 10);
    clock.advance(35);
    expect(fired).toEqual([10, 20, 30]);
    expect(clock.now()).toBe(35);
  });

  it('does not fire cleared timers, and fires a zero delay on the next advance', () => {
    const clock = new SimClock();
    let fired = 0;
    clock.setTimeout(() => fired++, 5).clear();
    clock.setTimeout(() => fired++, 0);
    expect(fired).toBe(0);
    clock.advance(10);
    expect(fired).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('runUntilIdle moves time to each timer in turn', () => {
    const clock = new SimClock(0);
    const at: number[] = [];
    clock.setTimeout(() => at.push(clock.now()), 50);
    clock.setTimeout(() => at.push(clock.now()), 20);
    expect(clock.runUntilIdle()).toBe(2);
    expect(at).toEqual([20, 50]);
    expect(clock.now()).toBe(50);
  });

  it('advanceAsync lets promise chains started by a timer set further timers', async () => {
    const clock = new SimClock(0);
    const at: number[] = [];
    clock.setTimeout(() => {
      void Promise.resolve().then(() => clock.setTimeout(() => at.push(clock.now()), 5));
    }, 10);
    await clock.advanceAsync(20);
    expect(at).toEqual([15]);
  });

  it('refuses to go backwards', () => {
    expect(() => new SimClock().advance(-1)).toThrow(RangeError);
  });
});

describe('systemClock', () => {
  it('reads monotonic and wall time and runs (and clears) real timers', async () => {
    const before = Date.now();
    expect(systemClock.wallNow()).toBeGreaterThanOrEqual(before);
    const m0 = systemClock.monotonicNow();
    expect(systemClock.monotonicNow()).toBeGreaterThanOrEqual(m0);
    let cleared = false;
    systemClock.setTimeout(() => (cleared = true), 1).clear();
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
    expect(cleared).toBe(false);
  });
});
