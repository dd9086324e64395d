import { UnderstudyError } from '../domain/model/understudyError.ts';
/**
 * Prometheus text exposition (format 0.0.4) without a client library: metric families are
 * plain values rendered by {@link renderPrometheus}.
 */

/** Label names to values of one series. */
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
}

/** One histogram series: per-bucket (not cumulative) counts; the last count is the +Inf bucket. */
export interface HistogramSample {
  readonly labels?: Labels;
  /** Upper bounds, ascending, without +Inf. */
  readonly bounds: readonly number[];
  /** `bounds.length + 1` counts: observations in (bound[i-1], bound[i]], then above the last. */
  readonly counts: readonly number[];
  readonly sum: number;
}

export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'counter' | 'gauge';
      readonly samples: readonly Sample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'histogram';
      readonly samples: readonly HistogramSample[];
    };

/** A metric or label name that Prometheus would reject. */
export class MetricNameError extends UnderstudyError {
  override readonly name = 'MetricNameError';
  readonly code = 'METRIC_NAME';
  constructor(
    readonly metricName: string,
    readonly kind: 'metric' | 'label',
  ) {
    super(`invalid Prometheus ${kind} name ${JSON.stringify(metricName)}`);
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value in the text format: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A HELP text in the text format: backslash and newline escaped. */
export function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value: integers and floats as JavaScript prints them, NaN and the infinities by name. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function renderLabels(labels: Labels | undefined, extra?: readonly [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra !== undefined) pairs.push([extra[0], extra[1]]);
  if (pairs.length === 0) return '';
  for (const [name] of pairs) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new MetricNameError(name, 'label');
  }
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/**
 * Renders metric families in the Prometheus text format: a `# HELP` and a `# TYPE` line per
 * family, then its samples; histograms as cumulative `_bucket{le=...}` series ending with
 * `le="+Inf"`, then `_sum` and `_count`. Throws {@link MetricNameError} on an invalid name.
 */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new MetricNameError(family.name, 'metric');
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type === 'histogram') {
      for (const sample of family.samples) {
        if (sample.counts.length !== sample.bounds.length + 1) {
          throw new Error(`${family.name}: ${sample.bounds.length + 1} bucket counts expected`);
        }
        let cumulative = 0;
        sample.bounds.forEach((bound, i) => {
          cumulative += sample.counts[i] ?? 0;
          const le = renderLabels(sample.labels, ['le', formatValue(bound)]);
          lines.push(`${family.name}_bucket${le} ${cumulative}`);
        });
        cumulative += sample.counts[sample.bounds.length] ?? 0;
        lines.push(
          `${family.name}_bucket${renderLabels(sample.labels, ['le', '+Inf'])} ${cumulative}`,
        );
        const labels = renderLabels(sample.labels);
        lines.push(`${family.name}_sum${labels} ${formatValue(sample.sum)}`);
        lines.push(`${family.name}_count${labels} ${cumulative}`);
      }
    } else {
      for (const sample of family.samples) {
        lines.push(`${family.name}${renderLabels(sample.labels)} ${formatValue(sample.value)}`);
      }
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** The content type of {@link renderPrometheus}'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
