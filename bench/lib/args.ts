// Command-line flags of the benchmarks.

/** The positive number after `name` in `args`, or `fallback`. */
export function numberFlag(args: readonly string[], name: string, fallback: number): number {
  const index = args.indexOf(name);
  const value = index >= 0 ? Number(args[index + 1]) : NaN;
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
