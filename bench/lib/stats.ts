// Small statistics shared by the benchmarks: percentiles, medians, rounding.

/** The value at percentile `p` (0-100) of ascending `sorted` (nearest rank, floor); 0 when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

/** The median of `values` (the upper one of an even count); 0 when empty. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** p50, p99 and max of a sample. */
export interface Distribution {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** The {@link Distribution} of `values` (any order). */
export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

/** Rounds to a whole number. */
export const round = (n: number): number => Math.round(n);
/** Rounds to two decimals (milliseconds). */
export const ms = (n: number): number => Math.round(n * 100) / 100;
/** Rounds to one decimal (ratios). */
export const ratio1 = (n: number): number => Math.round(n * 10) / 10;
