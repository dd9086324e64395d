/**
 * The sequential specification of understudy's client API, for the linearizability checker:
 * one object's lifecycle (absent, processing, complete) with its placement, its lastSeq and the
 * exact refusal codes of `src/domain/decide/decide.ts`, plus the segments it may be placed on.
 *
 * P-compositionality: each key is checked on its own, with every segment operation in every
 * key's part (an unmount drops replicas of any key) and in a part of its own. What one key
 * cannot know is left open, never guessed: `NO_SPACE`/`NOT_ENOUGH_NODES` (capacity is global)
 * and `LEASED` (read leases are not in the log) are allowed whenever the command would get
 * that far in `decide`; the placement of a putStart whose answer was lost is unknown until a
 * read shows it. Seqs are checked: the writes of a part take strictly increasing seqs in their
 * linearization order, and a read's lastSeq is the seq of the last write that touched the key.
 * Evictions are the primary's own writes: a history gets them as operations of client -1 from
 * the log, with a return time no later than the moment they became visible.
 */
import type { Operation, Partition, Model } from './linearizability.ts';

export interface PlacedReplica {
  readonly segmentId: string;
  readonly nodeId: string;
  readonly offset: number;
  readonly length: number;
  readonly status: 'processing' | 'complete';
}

export type ApiInput =
  | {
      readonly op: 'putStart';
      readonly key: string;
      readonly size: number;
      readonly replicaNum: number;
    }
  | { readonly op: 'putEnd' | 'putRevoke' | 'remove' | 'get' | 'exists'; readonly key: string }
  | {
      readonly op: 'mountSegment';
      readonly segmentId: string;
      readonly nodeId: string;
      readonly size: number;
    }
  | { readonly op: 'unmountSegment'; readonly segmentId: string }
  /** The primary evicted `key` (from the log's EVICTION entries). */
  | { readonly op: 'evict'; readonly key: string };

export type ApiOutput =
  | {
      readonly ok: true;
      readonly seq?: number;
      /** putStart: the placement. */
      readonly replicas?: readonly PlacedReplica[];
      /** get: the record. */
      readonly record?: {
        readonly size: number;
        readonly replicas: readonly PlacedReplica[];
        readonly lastSeq: number;
      };
      /** exists. */
      readonly exists?: boolean;
    }
  | { readonly ok: false; readonly code: string };

export type ApiOperation = Operation<ApiInput, ApiOutput>;

interface ObjectState {
  readonly size: number;
  readonly status: 'processing' | 'complete';
  /** The placement (segmentId, nodeId, offset, length), or null while unknown. */
  readonly placement: readonly (readonly [string, string, number, number])[] | null;
  /** The seq of the last write that touched it, or null while unknown. */
  readonly lastSeq: number | null;
}

interface KeyState {
  /** Mounted segments: [segmentId, nodeId], sorted. */
  readonly mounted: readonly (readonly [string, string])[];
  readonly object: ObjectState | null;
  /** Every write linearized from here on takes a seq above this. */
  readonly seqFloor: number;
}

function withSeq(state: KeyState, seq: number | undefined): KeyState | null {
  if (seq === undefined) return { ...state };
  if (!(seq > state.seqFloor)) return null;
  return { ...state, seqFloor: seq };
}

function isMounted(state: KeyState, segmentId: string): string | undefined {
  return state.mounted.find(([id]) => id === segmentId)?.[1];
}

/** The placement of a putStart answer, if it is one the model accepts in `state`. */
function placementOf(
  state: KeyState,
  input: { size: number; replicaNum: number },
  replicas: readonly PlacedReplica[] | undefined,
): ObjectState['placement'] | undefined {
  if (replicas === undefined || replicas.length !== input.replicaNum) return undefined;
  const nodes = new Set<string>();
  for (const r of replicas) {
    if (r.status !== 'processing' || r.length !== input.size) return undefined;
    if (isMounted(state, r.segmentId) !== r.nodeId || nodes.has(r.nodeId)) return undefined;
    nodes.add(r.nodeId);
  }
  return replicas.map((r) => [r.segmentId, r.nodeId, r.offset, r.length] as const);
}

/** Whether a read's record matches the object (binding what was unknown): the new object. */
function readMatches(
  object: ObjectState,
  record: NonNullable<Extract<ApiOutput, { ok: true }>['record']>,
): ObjectState | null {
  if (record.size !== object.size) return null;
  if (record.replicas.some((r) => r.status !== object.status)) return null;
  const placement = record.replicas.map(
    (r) => [r.segmentId, r.nodeId, r.offset, r.length] as const,
  );
  if (object.placement !== null && JSON.stringify(placement) !== JSON.stringify(object.placement))
    return null;
  if (object.lastSeq !== null && object.lastSeq !== record.lastSeq) return null;
  return { ...object, placement, lastSeq: record.lastSeq };
}

function code(output: ApiOutput | undefined): string | undefined {
  return output !== undefined && !output.ok ? output.code : undefined;
}

/** The model's step for one key's part; every result is a state the operation can leave. */
function step(state: KeyState, input: ApiInput, output: ApiOutput | undefined): KeyState[] {
  const unknown = output === undefined;
  const ok = output?.ok === true ? output : undefined;
  const refusal = code(output);
  const object = state.object;
  const out: KeyState[] = [];
  const push = (s: KeyState | null): void => {
    if (s !== null) out.push(s);
  };
  switch (input.op) {
    case 'putStart': {
      if (object === null) {
        if (ok !== undefined) {
          const placement = placementOf(state, input, ok.replicas);
          const next = withSeq(state, ok.seq);
          if (placement !== undefined && next !== null && ok.seq !== undefined)
            push({
              ...next,
              object: { size: input.size, status: 'processing', placement, lastSeq: ok.seq },
            });
        }
        if (unknown) {
          out.push(state, {
            ...state,
            object: { size: input.size, status: 'processing', placement: null, lastSeq: null },
          });
        }
        if (refusal === 'NO_SPACE' || refusal === 'NOT_ENOUGH_NODES') out.push(state);
      } else if (refusal === 'OBJECT_EXISTS' || unknown) out.push(state);
      return out;
    }
    case 'putEnd':
    case 'putRevoke': {
      if (object === null) {
        if (refusal === 'OBJECT_NOT_FOUND' || unknown) out.push(state);
        return out;
      }
      if (object.status === 'complete') {
        if (refusal === 'INVALID_STATE' || unknown) out.push(state);
        return out;
      }
      const after: ObjectState | null =
        input.op === 'putEnd' ? { ...object, status: 'complete', lastSeq: ok?.seq ?? null } : null;
      if (ok !== undefined) {
        const next = withSeq(state, ok.seq);
        if (next !== null && ok.seq !== undefined) push({ ...next, object: after });
      }
      if (unknown) out.push(state, { ...state, object: after });
      return out;
    }
    case 'remove': {
      if (object === null) {
        if (refusal === 'OBJECT_NOT_FOUND' || unknown) out.push(state);
        return out;
      }
      if (refusal === 'LEASED') out.push(state);
      if (object.status === 'processing') {
        if (refusal === 'INVALID_STATE' || unknown) out.push(state);
        return out;
      }
      if (ok !== undefined) {
        const next = withSeq(state, ok.seq);
        if (next !== null && ok.seq !== undefined) push({ ...next, object: null });
      }
      if (unknown) out.push(state, { ...state, object: null });
      return out;
    }
    case 'evict': {
      if (object !== null && object.status === 'complete') out.push({ ...state, object: null });
      return out;
    }
    case 'get': {
      if (unknown) return [state];
      if (object === null) return refusal === 'OBJECT_NOT_FOUND' ? [state] : [];
      if (ok?.record === undefined) return [];
      const bound = readMatches(object, ok.record);
      return bound === null ? [] : [{ ...state, object: bound }];
    }
    case 'exists': {
      if (unknown) return [state];
      return ok?.exists === (object !== null) ? [state] : [];
    }
    case 'mountSegment': {
      const mounted = isMounted(state, input.segmentId) !== undefined;
      if (mounted) {
        if (refusal === 'SEGMENT_EXISTS' || unknown) out.push(state);
        return out;
      }
      const after = {
        ...state,
        mounted: [...state.mounted, [input.segmentId, input.nodeId] as const].sort((a, b) =>
          a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0,
        ),
      };
      if (ok !== undefined) push(withSeq(after, ok.seq));
      if (unknown) out.push(state, after);
      return out;
    }
    case 'unmountSegment': {
      if (isMounted(state, input.segmentId) === undefined) {
        if (refusal === 'SEGMENT_NOT_FOUND' || unknown) out.push(state);
        return out;
      }
      const mounted = state.mounted.filter(([id]) => id !== input.segmentId);
      const seq = ok?.seq ?? null;
      const objects: (ObjectState | null)[] = [];
      if (object === null) objects.push(null);
      else if (object.placement === null) {
        // Unknown placement: it may have had a replica there (and lost its last one) or not.
        objects.push(object, null, { ...object, lastSeq: null });
      } else {
        const kept = object.placement.filter(([id]) => id !== input.segmentId);
        if (kept.length === object.placement.length) objects.push(object);
        else if (kept.length === 0) objects.push(null);
        else objects.push({ ...object, placement: kept, lastSeq: seq });
      }
      for (const o of objects) {
        const after = { ...state, mounted, object: o };
        if (ok !== undefined) push(withSeq(after, ok.seq));
        if (unknown) out.push(after);
      }
      if (unknown) out.push(state);
      return out;
    }
  }
}

/** The model of one key's part (all of them start with nothing mounted and no object). */
export const understudyModel: Model<KeyState, ApiInput, ApiOutput> = {
  init: () => [{ mounted: [], object: null, seqFloor: 0 }],
  step,
  key: (state) => JSON.stringify(state),
  describe: (op) => {
    const input = Object.entries(op.input)
      .filter(([k]) => k !== 'op')
      .map(([, v]) => JSON.stringify(v))
      .join(', ');
    const output =
      op.output === undefined
        ? '?? (unknown outcome)'
        : op.output.ok
          ? `ok ${JSON.stringify({ ...op.output, ok: undefined })}`
          : op.output.code;
    const end = op.return === Infinity ? 'inf' : String(op.return);
    return `[${op.call}..${end}] c${op.client} ${op.input.op}(${input}) -> ${output}`;
  },
};

const SEGMENT_OPS = new Set(['mountSegment', 'unmountSegment']);

/** Splits a history by key; segment operations go into every part and into one of their own. */
export function partitionByKey(ops: readonly ApiOperation[]): Partition<ApiInput, ApiOutput>[] {
  const segmentOps = ops.filter((op) => SEGMENT_OPS.has(op.input.op));
  const byKey = new Map<string, ApiOperation[]>();
  for (const op of ops) {
    if (SEGMENT_OPS.has(op.input.op)) continue;
    const key = (op.input as { key: string }).key;
    const list = byKey.get(key) ?? [...segmentOps];
    list.push(op);
    byKey.set(key, list);
  }
  return [
    { name: 'segments', ops: segmentOps },
    ...[...byKey].map(([key, list]) => ({ name: `key ${JSON.stringify(key)}`, ops: list })),
  ];
}
