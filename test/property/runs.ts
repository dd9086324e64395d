/**
 * How many cases a property runs: `defaultRuns` (at least 200), or more when the environment
 * asks with `UNDERSTUDY_PROP_RUNS=N` (e.g. `UNDERSTUDY_PROP_RUNS=10000 npm test`).
 */
export function propRuns(defaultRuns = 200): number {
  const asked = Number(process.env['UNDERSTUDY_PROP_RUNS']);
  return Number.isInteger(asked) && asked > 0 ? asked : defaultRuns;
}
