/**
 * A linearizability checker: the Wing-Gong search with Lowe's memoisation, as Porcupine (the
 * checker etcd's robustness tests use) implements it, for models that may be nondeterministic.
 *
 * A history is a list of operations, each with the time it was invoked and the time it
 * returned (on one clock, as the clients saw it) and its output. An operation whose outcome is
 * unknown (it timed out, gave up, the client was closed) has no output and returns at
 * +infinity: it may take effect at any point after its invocation, or never (taking effect
 * after everything else is the same as never, since nothing observes it).
 *
 * The search: walk the history's call and return events in time order; at a call, try to
 * linearize that operation now (the model must accept its output from the current state); at a
 * return whose operation is not linearized yet, backtrack. A (set of linearized operations,
 * model state) pair seen before is not searched again. A history is linearizable when every
 * operation is linearized.
 *
 * Nondeterminism (an unknown placement, a seq known only to be larger than another) is handled
 * as Porcupine suggests, by searching over sets of model states: a step maps every state of the
 * set to all the states it can lead to, and is possible when that set is not empty.
 */

export interface Operation<I, O> {
  /** Which client issued it (for reports). */
  readonly client: number;
  readonly input: I;
  /** Invocation time. */
  readonly call: number;
  /** Return time; `Infinity` when the outcome is unknown. */
  readonly return: number;
  /** The output; undefined when the outcome is unknown. */
  readonly output: O | undefined;
}

export interface Model<S, I, O> {
  /** The states before any operation. */
  init(): readonly S[];
  /**
   * Every state the operation can leave when it is applied to `state` and answers `output`
   * (undefined: unknown, any answer); empty when it cannot answer that from `state`.
   */
  step(state: S, input: I, output: O | undefined): readonly S[];
  /** A canonical string of a state (equal states, equal strings). */
  key(state: S): string;
  /** A readable line for an operation, for reports. */
  describe?(op: Operation<I, O>): string;
}

export type CheckResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** 'illegal': no linearization exists; 'unknown': the search ran out of its budget. */
      readonly verdict: 'illegal' | 'unknown';
      /** The most operations any attempt linearized, in that attempt's order. */
      readonly longestPrefix: readonly number[];
    };

export interface CheckOptions {
  /** Most search steps before giving up with 'unknown' (default 5,000,000). */
  readonly maxSteps?: number;
}

interface Entry {
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** Checks one history (one partition) against `model`. */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult {
  const maxSteps = options.maxSteps ?? 5_000_000;
  // Call and return events in time order; at equal times calls first (the operations are then
  // concurrent, which never reports a false violation).
  const events: Entry[] = [];
  ops.forEach((op, i) => {
    const call: Entry = {
      op: i,
      isCall: true,
      time: op.call,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    const ret: Entry = {
      op: i,
      isCall: false,
      time: op.return,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort(
    (a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1),
  );
  const head: Entry = {
    op: -1,
    isCall: false,
    time: -Infinity,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  const lift = (e: Entry): void => {
    e.prev!.next = e.next;
    if (e.next) e.next.prev = e.prev;
    const m = e.match!;
    m.prev!.next = m.next;
    if (m.next) m.next.prev = m.prev;
  };
  const unlift = (e: Entry): void => {
    const m = e.match!;
    m.prev!.next = m;
    if (m.next) m.next.prev = m;
    e.prev!.next = e;
    if (e.next) e.next.prev = e;
  };

  const keyOf = (states: readonly S[]): string =>
    states
      .map((s) => model.key(s))
      .sort()
      .join('\u0001');
  const stepAll = (states: readonly S[], op: Operation<I, O>): S[] => {
    const out = new Map<string, S>();
    for (const state of states) {
      for (const next of model.step(state, op.input, op.output)) out.set(model.key(next), next);
    }
    return [...out.values()];
  };

  const linearized = new Uint8Array(ops.length);
  const bits = (): string => {
    // A compact, exact key of the linearized set.
    let s = '';
    for (let i = 0; i < linearized.length; i += 16) {
      let word = 0;
      for (let j = 0; j < 16 && i + j < linearized.length; j++)
        if (linearized[i + j]) word |= 1 << j;
      s += String.fromCharCode(word + 0x20);
    }
    return s;
  };
  const seen = new Set<string>();
  const calls: { entry: Entry; states: readonly S[] }[] = [];
  let states: readonly S[] = model.init();
  let longest: number[] = [];
  let steps = 0;
  let entry = head.next;
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { ok: false, verdict: 'unknown', longestPrefix: longest };
    if (entry === undefined) break;
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const next = stepAll(states, op);
      if (next.length > 0) {
        linearized[entry.op] = 1;
        const key = `${bits()}|${keyOf(next)}`;
        if (!seen.has(key)) {
          seen.add(key);
          calls.push({ entry, states });
          states = next;
          lift(entry);
          if (calls.length > longest.length) longest = calls.map((c) => c.entry.op);
          entry = head.next;
          continue;
        }
        linearized[entry.op] = 0;
      }
      entry = entry.next;
    } else {
      // A return of an operation not linearized yet: what was linearized so far cannot be right.
      const top = calls.pop();
      if (top === undefined) return { ok: false, verdict: 'illegal', longestPrefix: longest };
      states = top.states;
      linearized[top.entry.op] = 0;
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { ok: true };
}

/** A history split into independent parts (P-compositionality: each is checked on its own). */
export interface Partition<I, O> {
  readonly name: string;
  readonly ops: readonly Operation<I, O>[];
}

export interface PartitionFailure<I, O> {
  readonly partition: string;
  readonly verdict: 'illegal' | 'unknown';
  /** The partition's operations, one readable line each, in invocation order. */
  readonly report: string;
  readonly ops: readonly Operation<I, O>[];
}

/** Checks every partition; returns the failing ones (empty: the history is linearizable). */
export function checkPartitions<S, I, O>(
  model: Model<S, I, O>,
  partitions: readonly Partition<I, O>[],
  options: CheckOptions = {},
): PartitionFailure<I, O>[] {
  const failures: PartitionFailure<I, O>[] = [];
  for (const partition of partitions) {
    const result = checkOperations(model, partition.ops, options);
    if (result.ok) continue;
    const describe = (op: Operation<I, O>): string =>
      model.describe === undefined ? JSON.stringify(op) : model.describe(op);
    const order = partition.ops.map((op, i) => ({ op, i })).sort((a, b) => a.op.call - b.op.call);
    const prefix = new Set(result.longestPrefix);
    const report = order
      .map(({ op, i }) => `${prefix.has(i) ? ' ' : '!'} ${describe(op)}`)
      .join('\n');
    failures.push({
      partition: partition.name,
      verdict: result.verdict,
      report,
      ops: partition.ops,
    });
  }
  return failures;
}
