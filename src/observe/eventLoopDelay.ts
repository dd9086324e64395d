/**
 * The event loop's delay over a rolling window, from `perf_hooks.monitorEventLoopDelay`: how
 * late a timer of the loop fires, which is how long the loop was kept from answering anything
 * (a lease keep-alive, a request, a fold). A node whose loop stalls past its lease margin
 * loses its lease, so `/metrics` shows the p99 and the max over the last window, and beside them
 * the longest garbage-collection pause (`PerformanceObserver` 'gc' entries): a stall as long as
 * a GC pause was the collector, one longer was the node's own work.
 */
import {
  monitorEventLoopDelay,
  PerformanceObserver,
  type IntervalHistogram,
} from 'node:perf_hooks';

/** The delay over a window, in milliseconds (0 when nothing was sampled yet). */
export interface LoopDelaySummary {
  /** The highest p99 of a slice of the window (an upper bound of the window's p99). */
  readonly p99Ms: number;
  readonly maxMs: number;
  /** The longest garbage-collection pause. */
  readonly gcMaxMs: number;
  /** Delay samples the figures are made of. */
  readonly samples: number;
}

const NS_PER_MS = 1e6;

/**
 * Samples the loop's delay every `resolutionMs` and keeps it in slices of `sliceMs`, so that
 * {@link summary} covers about the last `windowMs` (whole slices, plus the slice in progress).
 * The monitor's timer does not keep the process alive.
 */
export class EventLoopDelay {
  readonly #monitor: IntervalHistogram;
  readonly #gc: PerformanceObserver;
  /** The longest GC pause of the slice in progress. */
  #gcMaxMs = 0;
  readonly #slices: { readonly endAt: number; readonly summary: LoopDelaySummary }[] = [];
  #sliceStart: number;

  constructor(
    readonly windowMs = 10_000,
    readonly sliceMs = 1000,
    resolutionMs = 10,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#monitor = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#monitor.enable();
    this.#gc = new PerformanceObserver((entries) => {
      for (const entry of entries.getEntries())
        this.#gcMaxMs = Math.max(this.#gcMaxMs, entry.duration);
    });
    this.#gc.observe({ entryTypes: ['gc'] });
    this.#sliceStart = now();
  }

  /**
   * The delay's p99 (the worst slice's) and max, and the longest GC pause, over the window
   * ending now.
   */
  summary(): LoopDelaySummary {
    this.#rotate();
    let p99Ms = 0;
    let maxMs = 0;
    let gcMaxMs = 0;
    let samples = 0;
    for (const { summary } of [...this.#slices, { summary: this.#current() }]) {
      p99Ms = Math.max(p99Ms, summary.p99Ms);
      maxMs = Math.max(maxMs, summary.maxMs);
      gcMaxMs = Math.max(gcMaxMs, summary.gcMaxMs);
      samples += summary.samples;
    }
    return { p99Ms, maxMs, gcMaxMs, samples };
  }

  /** The slice in progress. */
  #current(): LoopDelaySummary {
    const m = this.#monitor;
    const gcMaxMs = this.#gcMaxMs;
    if (m.count === 0) return { p99Ms: 0, maxMs: 0, gcMaxMs, samples: 0 };
    return {
      p99Ms: m.percentile(99) / NS_PER_MS,
      maxMs: m.max / NS_PER_MS,
      gcMaxMs,
      samples: m.count,
    };
  }

  /** Stops sampling. */
  stop(): void {
    this.#monitor.disable();
    this.#gc.disconnect();
  }

  /** Closes the slice in progress once `sliceMs` old, and forgets slices out of the window. */
  #rotate(): void {
    const now = this.now();
    if (now - this.#sliceStart >= this.sliceMs) {
      this.#slices.push({ endAt: now, summary: this.#current() });
      this.#monitor.reset();
      this.#gcMaxMs = 0;
      this.#sliceStart = now;
    }
    while ((this.#slices[0]?.endAt ?? now) <= now - this.windowMs) this.#slices.shift();
  }

  /** Call about every `sliceMs` (the node's sampler does): keeps the slices current. */
  tick(): void {
    this.#rotate();
  }
}
