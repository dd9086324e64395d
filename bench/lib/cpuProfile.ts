// Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went: per function, the
// time it ran itself (self) and the time it was on the stack (total), as shares of the samples.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** Monotonic clock (CLOCK_MONOTONIC) of the first sample, in microseconds. */
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function of a profile: where it is, and its self and total time in ms. */
export interface ProfileLine {
  readonly name: string;
  readonly selfMs: number;
  readonly totalMs: number;
}

/** What a profile says: its sampled time and its functions, heaviest (self) first. */
export interface ProfileSummary {
  readonly sampledMs: number;
  /** Time in `(idle)`: the event loop waiting. */
  readonly idleMs: number;
  /** Time in `(garbage collector)`. */
  readonly gcMs: number;
  readonly lines: readonly ProfileLine[];
}

function nameOf(node: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const fn = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return fn;
  const path = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url;
  return `${fn} ${path.replace(/^node_modules\//, '~/')}:${lineNumber + 1}`;
}

/** A time window on the monotonic clock, in microseconds (`process.hrtime.bigint() / 1000n`). */
export interface ProfileWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

/** Now on the clock a profile's timestamps use (CLOCK_MONOTONIC), in microseconds. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The path of the profile process `pid` wrote into `dir` (`node --cpu-prof --cpu-prof-dir`). */
export function profileOfPid(dir: string, pid: number): string {
  const file = readdirSync(dir).find((n) => n.includes(`.${pid}.`) && n.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no profile of pid ${pid} in ${dir}`);
  return join(dir, file);
}

/**
 * Summarises the `.cpuprofile` file at `path` (only the samples inside `window` when given:
 * leaves out start-up); paths are shown relative to `root`.
 */
export function summariseProfile(
  path: string,
  root: string,
  window?: ProfileWindow,
): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let sampledUs = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) return;
    sampledUs += us;
    const leaf = byId.get(id);
    if (leaf === undefined) return;
    const leafName = nameOf(leaf, root);
    self.set(leafName, (self.get(leafName) ?? 0) + us);
    const onStack = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const node = byId.get(n);
      if (node !== undefined) onStack.add(nameOf(node, root));
    }
    for (const name of onStack) total.set(name, (total.get(name) ?? 0) + us);
  });
  const lines = [...self.keys(), ...[...total.keys()].filter((k) => !self.has(k))].map(
    (name): ProfileLine => ({
      name,
      selfMs: (self.get(name) ?? 0) / 1000,
      totalMs: (total.get(name) ?? 0) / 1000,
    }),
  );
  lines.sort((a, b) => b.selfMs - a.selfMs);
  return {
    sampledMs: sampledUs / 1000,
    idleMs: (self.get('(idle)') ?? 0) / 1000,
    gcMs: (self.get('(garbage collector)') ?? 0) / 1000,
    lines,
  };
}

/** The summary as text: the `top` functions by self time, then by total time. */
export function formatProfile(summary: ProfileSummary, top = 25): string {
  const busy = summary.sampledMs - summary.idleMs;
  const pct = (ms: number): string => `${((ms / busy) * 100).toFixed(1).padStart(5)} %`;
  const out = [
    `sampled ${summary.sampledMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms, busy ${busy.toFixed(0)} ms (shares below are of busy time); GC ${pct(summary.gcMs)}`,
    '',
    `top ${top} by self time:`,
  ];
  const rows = summary.lines.filter((l) => l.name !== '(idle)' && l.name !== '(root)');
  for (const l of rows.slice(0, top)) out.push(`  ${pct(l.selfMs)} self  ${l.name}`);
  out.push('', `top ${top} by total time (on the stack):`);
  const byTotal = [...rows]
    .filter((l) => l.name !== '(program)')
    .sort((a, b) => b.totalMs - a.totalMs);
  for (const l of byTotal.slice(0, top)) out.push(`  ${pct(l.totalMs)} total ${l.name}`);
  return out.join('\n');
}
