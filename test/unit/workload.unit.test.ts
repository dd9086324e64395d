// The write load of the demo and the end-to-end tests: a closed client ends it instead of
// spinning through failing calls (which would starve every timer of the process).
import { describe, expect, it } from 'vitest';
import { ApiError, type UnderstudyClient } from '../../src/client/client.ts';
import { Workload } from '../../src/tools/localCluster/workload.ts';

describe('Workload', () => {
  it('stops its workers when the client is closed, and the process timers keep running', async () => {
    let calls = 0;
    const closed = new ApiError({ code: 'CLOSED', message: 'client closed', retryable: false });
    const client = {
      putStart: () => {
        calls += 1;
        // Were the workers to spin, this ends them, so the test fails instead of hanging.
        if (calls >= 100) void load.stop();
        return Promise.reject(closed);
      },
    } as unknown as UnderstudyClient;
    const load: Workload = new Workload(client, { concurrency: 3 });
    load.start();
    // A timer fires (a spinning worker would keep it from ever running), and stop() returns.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await load.stop();
    expect(calls).toBe(3);
    expect(load.failures).toHaveLength(3);
    expect(load.acks).toHaveLength(0);
  });

  it('goes on after other failures, yielding to timers between calls', async () => {
    let calls = 0;
    const client = {
      putStart: () => {
        calls += 1;
        // Were the workers to spin, every call would happen before the first timer: this ends
        // them, so the test fails instead of hanging.
        if (calls >= 200_000) void load.stop();
        return Promise.reject(
          new ApiError({ code: 'NO_SPACE', message: 'full', retryable: false }),
        );
      },
    } as unknown as UnderstudyClient;
    const load: Workload = new Workload(client, { concurrency: 1 });
    load.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const atFirstTimer = calls;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const atSecondTimer = calls;
    await load.stop();
    expect(atFirstTimer).toBeGreaterThan(0);
    expect(atSecondTimer).toBeGreaterThan(atFirstTimer);
    expect(load.failures.every((f) => f.error.includes('full'))).toBe(true);
  });
});
