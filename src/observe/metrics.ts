/**
 * What a node accumulates between scrapes (request latencies, applied entries, verification and
 * checkpoint counters) in {@link NodeMetrics}, and the metric families it renders from them
 * (prometheusText.ts renders the text).
 */
import type { ApiRequestHandler } from '../ports/apiTransport.ts';
import type { EventLoopDelay } from './eventLoopDelay.ts';
import type { HistogramSample, MetricFamily } from './prometheusText.ts';

/** Request latency buckets (seconds): 0.5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** A histogram per label set (one label value, e.g. the API op). */
export class Histogram {
  readonly #series = new Map<string, { counts: number[]; sum: number }>();

  constructor(
    readonly bounds: readonly number[] = LATENCY_BUCKETS,
    private readonly labelName = 'op',
  ) {}

  observe(labelValue: string, value: number): void {
    let series = this.#series.get(labelValue);
    if (series === undefined) {
      series = { counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0 };
      this.#series.set(labelValue, series);
    }
    let i = this.bounds.findIndex((bound) => value <= bound);
    if (i < 0) i = this.bounds.length;
    series.counts[i] = (series.counts[i] ?? 0) + 1;
    series.sum += value;
  }

  samples(): HistogramSample[] {
    return [...this.#series.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([value, s]) => ({
        labels: { [this.labelName]: value },
        bounds: this.bounds,
        counts: [...s.counts],
        sum: s.sum,
      }));
  }
}

/** Counts the entries a node applies from samples of its applied seq, and their recent rate. */
export class ApplyRate {
  #total = 0;
  #lastSeq: number | undefined;
  readonly #window: Array<{ at: number; total: number }> = [];

  constructor(private readonly windowMs = 10_000) {}

  /** Takes a sample: the applied seq at time `at` (ms). A seq that went back (a full sync) restarts. */
  sample(appliedSeq: number, at: number): void {
    if (this.#lastSeq !== undefined && appliedSeq > this.#lastSeq) {
      this.#total += appliedSeq - this.#lastSeq;
    }
    this.#lastSeq = appliedSeq;
    this.#window.push({ at, total: this.#total });
    while ((this.#window[0]?.at ?? at) < at - this.windowMs) {
      this.#window.shift();
    }
  }

  /** Entries applied since the first sample. */
  get total(): number {
    return this.#total;
  }

  /** Entries per second between the oldest and newest sample in the window; 0 with fewer than two. */
  get perSecond(): number {
    const first = this.#window[0];
    const last = this.#window[this.#window.length - 1];
    if (first === undefined || last === undefined || last.at <= first.at) return 0;
    return ((last.total - first.total) * 1000) / (last.at - first.at);
  }
}

/** Verification counters as a node reports them; missing ones count as 0. */
export interface VerificationCounters {
  readonly rounds?: number;
  readonly failedRounds?: number;
  readonly keysChecked?: number;
  readonly mismatches?: number;
  readonly repairs?: number;
  readonly fullSyncs?: number;
}

/** What a node's metrics are rendered from at scrape time. */
export interface NodeMetricsSnapshot {
  readonly nodeId: string;
  readonly role: string;
  readonly roles: readonly string[];
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly logLastSeq: number;
  readonly promotions: number;
  readonly fences: number;
  /** Stream messages passed over (no batches of entries); absent counts as 0. */
  readonly skippedMessages?: number;
  /** Entries passed over because no elected primary wrote them; absent counts as 0. */
  readonly foreignEntries?: number;
  readonly verificationHealthy: boolean;
  readonly verification: VerificationCounters | undefined;
  /** Checkpoint counters; absent for a node without a checkpoint store. */
  readonly checkpoints?: CheckpointCounters;
  /** Wall time of the scrape (ms since the Unix epoch): the checkpoint age is measured to it. */
  readonly now?: number;
}

/** What `/metrics` shows of checkpoints (see node/checkpoints/checkpointStats.ts). */
export interface CheckpointCounters {
  readonly written: number;
  readonly failed: number;
  readonly corrupt: number;
  readonly lastWriteMs: number;
  readonly lastWriteBytes: number;
  readonly newest:
    { readonly createdAt: number; readonly bytes: number; readonly appliedSeq: number } | undefined;
  readonly failClosed: string | undefined;
  /** Set while the node refuses because a checkpoint is past the stream's end. */
  readonly streamTailLost?: { readonly checkpointSeq: number } | undefined;
}

/** Receives the time each API request took, by op. */
export interface RequestObserver {
  observeRequest(op: string, seconds: number): void;
}

/**
 * Wraps an API handler so that every request's time from arrival to answer is observed,
 * by op; unknown ops are observed as `unknown` so the label set stays bounded.
 */
export function timeRequests(
  handler: ApiRequestHandler,
  observer: RequestObserver,
  knownOps: readonly string[],
): ApiRequestHandler {
  const known = new Set(knownOps);
  return async (op, body) => {
    const started = performance.now();
    try {
      return await handler(op, body);
    } finally {
      observer.observeRequest(known.has(op) ? op : 'unknown', (performance.now() - started) / 1000);
    }
  };
}

/** A node's metrics: the request latency histograms plus gauges read from the node at scrape time. */
export class NodeMetrics implements RequestObserver {
  readonly requests = new Histogram(LATENCY_BUCKETS, 'op');
  readonly applied = new ApplyRate(10_000);

  /** `loopDelay`: the process's event-loop delay, shown when given (a node process gives it). */
  constructor(readonly loopDelay?: EventLoopDelay) {}

  observeRequest(op: string, seconds: number): void {
    this.requests.observe(op, seconds);
  }

  /**
   * Records the applied seq now (call every second or so, and at each scrape); also moves the
   * event-loop delay's window on.
   */
  sampleApplied(appliedSeq: number, at: number = performance.now()): void {
    this.applied.sample(appliedSeq, at);
    this.loopDelay?.tick();
  }

  /** The node's metric families. */
  families(node: NodeMetricsSnapshot): MetricFamily[] {
    const v = node.verification ?? {};
    const gauge = (name: string, help: string, value: number): MetricFamily => ({
      name,
      help,
      type: 'gauge',
      samples: [{ value }],
    });
    const counter = (name: string, help: string, value: number): MetricFamily => ({
      name,
      help,
      type: 'counter',
      samples: [{ value }],
    });
    return [
      {
        name: 'understudy_node_info',
        help: 'Always 1; the label names the node.',
        type: 'gauge',
        samples: [{ labels: { node: node.nodeId }, value: 1 }],
      },
      {
        name: 'understudy_node_state',
        help: 'The node state: 1 for the current one, 0 for the others.',
        type: 'gauge',
        samples: node.roles.map((role) => ({
          labels: { state: role },
          value: role === node.role ? 1 : 0,
        })),
      },
      gauge(
        'understudy_epoch',
        "The node's epoch when primary, else the leader's (0 unknown).",
        node.epoch,
      ),
      gauge(
        'understudy_applied_seq',
        'The last log entry folded into the committed state.',
        node.appliedSeq,
      ),
      gauge(
        'understudy_log_last_seq',
        'The last entry the log holds, as last seen.',
        node.logLastSeq,
      ),
      gauge(
        'understudy_lag_entries',
        'Entries in the log not yet applied (log last seq - applied seq).',
        Math.max(0, node.logLastSeq - node.appliedSeq),
      ),
      counter(
        'understudy_applied_entries_total',
        'Log entries applied since the process started.',
        this.applied.total,
      ),
      gauge(
        'understudy_apply_rate',
        'Entries applied per second over the last 10 seconds.',
        this.applied.perSecond,
      ),
      {
        name: 'understudy_request_duration_seconds',
        help: 'Time from an API request reaching the primary to its answer, by op.',
        type: 'histogram',
        samples: this.requests.samples(),
      },
      gauge(
        'understudy_verification_healthy',
        '0 after a verification round that needed a full sync, until it is done.',
        node.verificationHealthy ? 1 : 0,
      ),
      counter(
        'understudy_verification_rounds_total',
        'Verification rounds the primary answered.',
        v.rounds ?? 0,
      ),
      counter(
        'understudy_verification_failed_rounds_total',
        'Verification rounds that got no answer (no primary, timeout, error).',
        v.failedRounds ?? 0,
      ),
      counter(
        'understudy_verification_keys_checked_total',
        'Keys compared by verification.',
        v.keysChecked ?? 0,
      ),
      counter(
        'understudy_verification_mismatches_total',
        'Keys verification found different from the primary.',
        v.mismatches ?? 0,
      ),
      counter(
        'understudy_verification_repairs_total',
        'Records verification repaired in place.',
        v.repairs ?? 0,
      ),
      counter(
        'understudy_verification_full_syncs_total',
        'Full syncs from the primary.',
        v.fullSyncs ?? 0,
      ),
      ...checkpointFamilies(node.checkpoints, node.now ?? Date.now(), gauge, counter),
      ...loopDelayFamilies(this.loopDelay, gauge),
      counter(
        'understudy_promotions_total',
        'Times this node became primary (failovers and switchovers it won).',
        node.promotions,
      ),
      counter(
        'understudy_fences_total',
        'Times this node was fenced and stepped down.',
        node.fences,
      ),
      counter(
        'understudy_log_messages_skipped_total',
        'OpLog stream messages this node passed over because they were not batches of entries (corrupt, or published by an outsider).',
        node.skippedMessages ?? 0,
      ),
      counter(
        'understudy_log_entries_foreign_total',
        'OpLog entries this node passed over because no elected primary wrote them (an EPOCH fence of no real election, or an entry stamped with another epoch than the current one).',
        node.foreignEntries ?? 0,
      ),
    ];
  }
}

type FamilyOf = (name: string, help: string, value: number) => MetricFamily;

function loopDelayFamilies(loop: EventLoopDelay | undefined, gauge: FamilyOf): MetricFamily[] {
  if (loop === undefined) return [];
  const { p99Ms, maxMs, gcMaxMs } = loop.summary();
  const window = `${Math.round(loop.windowMs / 1000)} s`;
  return [
    gauge(
      'understudy_event_loop_delay_p99_seconds',
      `p99 of how late the event loop ran a timer (perf_hooks.monitorEventLoopDelay) over the last ${window}.`,
      p99Ms / 1000,
    ),
    gauge(
      'understudy_event_loop_delay_max_seconds',
      `The longest the event loop was kept from running a timer over the last ${window}: a stall of the node (a lease keep-alive waits as long).`,
      maxMs / 1000,
    ),
    gauge(
      'understudy_gc_pause_max_seconds',
      `The longest garbage-collection pause (perf_hooks 'gc' entries) over the last ${window}: a loop stall about as long was the collector's.`,
      gcMaxMs / 1000,
    ),
  ];
}

function checkpointFamilies(
  c: CheckpointCounters | undefined,
  now: number,
  gauge: FamilyOf,
  counter: FamilyOf,
): MetricFamily[] {
  if (c === undefined) return [];
  const newest = c.newest;
  return [
    gauge(
      'understudy_checkpoint_age_seconds',
      'Age of the newest checkpoint this node knows of (-1 when there is none).',
      newest === undefined ? -1 : Math.max(0, (now - newest.createdAt) / 1000),
    ),
    gauge(
      'understudy_checkpoint_seq',
      'The last entry the newest known checkpoint holds (0 when there is none).',
      newest?.appliedSeq ?? 0,
    ),
    gauge(
      'understudy_checkpoint_bytes',
      'Size of the newest known checkpoint (bytes; 0 when there is none).',
      newest?.bytes ?? 0,
    ),
    gauge(
      'understudy_checkpoint_write_seconds',
      'Time the last checkpoint this node wrote took, from freezing the state to publishing it.',
      c.lastWriteMs / 1000,
    ),
    counter('understudy_checkpoints_written_total', 'Checkpoints this node wrote.', c.written),
    counter(
      'understudy_checkpoint_failures_total',
      'Checkpoint writes that failed (store error or a read-back that did not match).',
      c.failed,
    ),
    counter(
      'understudy_checkpoints_corrupt_total',
      'Checkpoints found corrupt while loading or verifying.',
      c.corrupt,
    ),
    gauge(
      'understudy_failed_closed',
      '1 while the node refuses to start: neither the stream nor a checkpoint reaches back.',
      c.failClosed === undefined ? 0 : 1,
    ),
    gauge(
      'understudy_stream_tail_lost',
      '1 while the node refuses to start because a checkpoint is past the stream end: the stream lost acknowledged entries.',
      c.streamTailLost === undefined ? 0 : 1,
    ),
  ];
}
