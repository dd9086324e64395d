// The inspect page's model: every record in order, the state they add up to (which root actors
// exist, each one's snapshot, role and epoch) and the timeline's rows. No DOM here.
import type { NodeView, PageRecord } from '../inspectHub.ts';
import type { RecordedSnapshot } from '../../../observe/inspectionRecord.ts';
import type { Chart } from './chart.ts';

/** A root actor (a node's machine) as the page knows it. */
export interface RootActor {
  readonly sessionId: string;
  readonly node: string;
  readonly name: string;
  readonly machine: string | undefined;
  snapshot: RecordedSnapshot;
  /** From the server's one role mapping (storyWords.ts), carried on the snapshot record. */
  role: string | undefined;
  epoch: number | undefined;
  /** Replay: its recording ended with its machine running. */
  ended: boolean;
  /** When it last changed (ms since the epoch), and the index of that record. */
  at: number;
  index: number;
}

/** What the records up to a moment add up to. */
export interface PageState {
  readonly roots: Map<string, RootActor>;
}

/** One timeline row: an event sent to a root actor and the state it led to. */
export interface Row {
  index: number;
  readonly at: number;
  readonly node: string;
  readonly event: string;
  readonly raw: string;
  readonly eventType?: string;
  progress?: boolean;
  after: string;
  afterRaw?: string;
  change: boolean;
}

export interface Model {
  mode: 'live' | 'replay';
  /** Every record, in order. */
  records: PageRecord[];
  /** Live: the state after the last record. Replay: computed for `position`. */
  live: PageState;
  position: number;
  /** The timeline: one row per event sent to a root actor (with the state it led to). */
  rows: Row[];
  rowOfRoot: Map<string, Row>;
  nodeViews: Map<string, NodeView>;
  problem: string | undefined;
  leaseTtlMs: number | undefined;
  /** Charts by machine id; null while its layout is being fetched. */
  charts: Map<string, Chart | null>;
  colorOf: Map<string, number>;
  focus: string | undefined;
  historyDone: boolean;
}

export function emptyState(): PageState {
  return { roots: new Map() };
}

/** The page's one model (`window.understudyInspect` in the browser's console). */
export const model: Model = {
  mode: 'live',
  records: [],
  live: emptyState(),
  position: 0,
  rows: [],
  rowOfRoot: new Map(),
  nodeViews: new Map(),
  problem: undefined,
  leaseTtlMs: undefined,
  charts: new Map(),
  colorOf: new Map(),
  focus: undefined,
  historyDone: false,
};

/** Forgets every record (a new stream said hello). */
export function reset(): void {
  model.records = [];
  model.live = emptyState();
  model.rows = [];
  model.rowOfRoot = new Map();
  model.position = 0;
  model.historyDone = false;
}

function machineIdOf(definition: string | undefined): string | undefined {
  try {
    const id = (JSON.parse(definition ?? '') as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Applies one record to a state (which roots exist, and each one's snapshot); true when it changes one's state. */
export function apply(state: PageState, record: PageRecord, index: number): boolean {
  const at = Number(record.createdAt);
  if (record.type === '@xstate.actor' && record.parentId === undefined) {
    state.roots.set(record.sessionId, {
      sessionId: record.sessionId,
      node: record.node,
      name: record.name ?? record.sessionId,
      machine: machineIdOf(record.definition),
      snapshot: record.snapshot ?? { status: 'active' },
      role: record.role,
      epoch: record.epoch,
      ended: false,
      at,
      index,
    });
    // A starting actor shows once its first snapshot (with a state value) arrives.
    return record.snapshot?.value !== undefined;
  }
  const root = state.roots.get(record.sessionId);
  if (record.type === '@understudy.recordingEnded') {
    if (root === undefined) return false;
    // Replay: the node's recording ends with its machine running (killed): it is gone.
    root.ended = true;
    root.at = at;
    root.index = index;
    return true;
  }
  if (record.type === '@xstate.snapshot' && root !== undefined && record.snapshot !== undefined) {
    const changed = JSON.stringify(root.snapshot.value) !== JSON.stringify(record.snapshot.value);
    // Role and epoch come with the snapshot, from the server's one mapping (storyWords.ts).
    if (record.role !== undefined) {
      root.role = record.role;
      root.epoch = record.epoch;
    }
    root.snapshot = record.snapshot;
    root.at = at;
    root.index = index;
    return changed;
  }
  return false;
}

/** The state after records[0..n]. */
export function stateAt(n: number): PageState {
  const state = emptyState();
  for (let i = 0; i <= n && i < model.records.length; i++) {
    const record = model.records[i];
    if (record !== undefined) apply(state, record, i);
  }
  return state;
}

/** The state the page shows: live, the newest; replaying, the one at the slider's position. */
export function shown(): PageState {
  return model.mode === 'replay' ? stateAt(model.position) : model.live;
}

/** The next (dir 1) or previous (dir -1) record that changes a root actor's state. */
export function nextChange(from: number, dir: 1 | -1): number {
  if (dir > 0) {
    const state = stateAt(from);
    for (let i = from + 1; i < model.records.length; i++) {
      const record = model.records[i];
      if (record !== undefined && apply(state, record, i)) return i;
    }
    return model.records.length - 1;
  }
  // Backwards: just before the change that made the state shown, so the previous state shows.
  let change = 0;
  const walk = emptyState();
  for (let i = 0; i <= from; i++) {
    const record = model.records[i];
    if (record !== undefined && apply(walk, record, i)) change = i;
  }
  return Math.max(0, change - 1);
}

/** Records a row for the timeline; snapshots that change state fill in "state after". */
export function addRow(record: PageRecord, index: number): void {
  const rootKnown = model.live.roots.has(record.sessionId) || record.type === '@xstate.actor';
  if (!rootKnown) return;
  const at = Number(record.createdAt);
  if (record.type === '@understudy.recordingEnded') {
    model.rows.push({
      index,
      at,
      node: record.node,
      event: record.words,
      raw: record.type,
      after: 'gone',
      change: true,
    });
    return;
  }
  if (record.type === '@xstate.actor') {
    if (record.parentId !== undefined) return;
    const row: Row = {
      index,
      at,
      node: record.node,
      event: `started ${record.name ?? ''}`,
      raw: `@xstate.actor ${record.name ?? ''}`,
      after: stateWords(record.role, record.snapshot?.value),
      afterRaw: valueText(record.snapshot?.value),
      change: true,
    };
    model.rows.push(row);
    model.rowOfRoot.set(record.sessionId, row);
    return;
  }
  if (record.type === '@xstate.event') {
    const type = record.event?.type ?? '?';
    const words = record.words ?? type;
    const folded = record.folded ?? 0;
    const row: Row = {
      index,
      at,
      node: record.node,
      event: folded > 0 ? `${words} ×${folded + 1}` : words,
      raw: folded > 0 ? `${type} ×${folded + 1}` : type,
      eventType: type,
      progress: type === 'oplog.progress',
      after: '',
      change: false,
    };
    model.rows.push(row);
    model.rowOfRoot.set(record.sessionId, row);
    return;
  }
  const row = model.rowOfRoot.get(record.sessionId);
  const before = valueText(model.live.roots.get(record.sessionId)?.snapshot.value);
  const after = valueText(record.snapshot?.value);
  if (row !== undefined && row.after === '' && row.eventType === record.event?.type) {
    // Only a change of state is shown (and bold); progress keeps the state it had.
    row.change = after !== before;
    row.after = row.change ? stateWords(record.role, record.snapshot?.value) : '';
    row.afterRaw = row.change ? after : '';
    // A progress event that changed the state is part of the story: never folded away.
    if (row.change) row.progress = false;
    row.index = index;
  }
}

/** A state value as text (`running.standby.following`). */
export function valueText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value !== 'object') return '';
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => (typeof v === 'string' ? `${k}.${v}` : `${k}.${valueText(v)}`))
    .join(', ');
}

/** A state as a person reads it: the role, then the innermost state (`standby: awaitingCampaign`). */
export function stateWords(role: string | undefined, value: unknown): string {
  let leaf = value;
  while (leaf !== null && typeof leaf === 'object') leaf = Object.values(leaf)[0];
  if (typeof leaf !== 'string') return role ?? '';
  if (role === undefined || role === leaf) return leaf;
  return `${role}: ${leaf}`;
}
