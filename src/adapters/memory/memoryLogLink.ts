import type { Clock, TimerHandle } from '../../ports/clock.ts';
import type { MemoryLogStore } from './memoryLogStore.ts';

/**
 * One node's connection to the shared {@link MemoryLogStore}: the time a call takes each way,
 * the timeouts of calls that wait, and whether a partition lets the node reach the store. The
 * writers and followers of that node's log go through it.
 */
export interface MemoryLogLink {
  readonly store: MemoryLogStore;
  readonly nodeId: string;
  /** Whether the log this link belongs to was closed. */
  readonly closed: () => boolean;
  /** Runs `onTimeout` after `ms` (default the log's `timeoutMs`) on the clock; none without both. */
  readonly armTimeout: (onTimeout: () => void, ms?: number) => TimerHandle | undefined;
  /** One way of a call: `latencyMs` on the clock (at once without a clock or latency). */
  readonly oneWay: () => number;
  /** Runs `step` after `ms` on the clock (at once when `ms` is not positive or there is no clock). */
  readonly after: (ms: number, step: () => void) => void;
  /** The clock's monotonic time (0 without a clock). */
  readonly now: () => number;
  /** Whether `nodeId` is not partitioned now. */
  readonly canReach: () => boolean;
  /** Resolves once `nodeId` is not partitioned (at once when it is not). */
  readonly reachable: () => Promise<void>;
}

/** The {@link MemoryLogLink} of `nodeId` to `store`, on `clock` with the given latency and timeout. */
export function createMemoryLogLink(
  store: MemoryLogStore,
  nodeId: string,
  options: {
    readonly clock?: Clock | undefined;
    readonly timeoutMs?: number | undefined;
    readonly latencyMs?: (() => number) | undefined;
    readonly closed: () => boolean;
  },
): MemoryLogLink {
  const { clock, timeoutMs } = options;

  const armTimeout = (onTimeout: () => void, ms = timeoutMs): TimerHandle | undefined =>
    clock !== undefined && ms !== undefined ? clock.setTimeout(onTimeout, ms) : undefined;

  const oneWay = (): number => (clock === undefined ? 0 : Math.max(0, options.latencyMs?.() ?? 0));
  const after = (ms: number, step: () => void): void => {
    if (ms <= 0 || clock === undefined) step();
    else clock.setTimeout(step, ms);
  };
  const now = (): number => clock?.monotonicNow() ?? 0;

  const canReach = (): boolean => !store.isPartitioned(nodeId);

  const reachable = (): Promise<void> =>
    new Promise((resolve) => {
      if (canReach()) {
        resolve();
        return;
      }
      const unsubscribe = store.subscribe(() => {
        if (canReach()) {
          unsubscribe();
          resolve();
        }
      });
    });

  return {
    store,
    nodeId,
    closed: options.closed,
    armTimeout,
    oneWay,
    after,
    now,
    canReach,
    reachable,
  };
}
