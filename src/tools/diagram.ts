// State-machine diagrams generated from an XState v5 machine definition (pure: no I/O).
// The generator walks the machine's state nodes, so a diagram is always the machine as it is.
import type { AnyStateMachine, AnyStateNode } from 'xstate';

/** One transition that changes state, as drawn in a diagram. */
export interface DiagramTransition {
  /** The state node id the transition leaves (`masterNode.running.primary`). */
  readonly source: string;
  /** The state node id it enters. */
  readonly target: string;
  /** The XState event type (`node.stop`, `xstate.done.actor.promote`; `''` for `always`). */
  readonly eventType: string;
  /** The label drawn on the edge: event, delay or invoke outcome, and the guard. */
  readonly label: string;
}

/** A state node as drawn: its id, key, kind, children, initial child and invoked actors. */
export interface DiagramState {
  readonly id: string;
  readonly key: string;
  readonly type: string;
  readonly children: readonly DiagramState[];
  readonly initial: readonly string[];
  readonly invokes: readonly string[];
}

/** The machine's root state node, with every state below it, as diagrams draw them. */
export function diagramRoot(machine: AnyStateMachine): DiagramState {
  return describeState(machine.root);
}

/**
 * Every state node of `machine` below its root, in document order, by id
 * (`masterNode.running.standby`, ...).
 */
export function diagramStateIds(machine: AnyStateMachine): string[] {
  const ids: string[] = [];
  const visit = (state: DiagramState): void => {
    ids.push(state.id);
    state.children.forEach(visit);
  };
  describeState(machine.root).children.forEach(visit);
  return ids;
}

/**
 * Every transition of `machine` that has a target (events in `on`, `after` delays, `always`,
 * invoke `onDone` / `onError`), one per target. Transitions without a target (actions only)
 * do not change state and are not drawn.
 */
export function diagramTransitions(machine: AnyStateMachine): DiagramTransition[] {
  const out: DiagramTransition[] = [];
  const visit = (node: AnyStateNode): void => {
    const definitions = [...[...node.transitions.values()].flat(), ...(node.always ?? [])];
    for (const transition of definitions) {
      // `always` transitions have the empty event type.
      const eventType = String(transition.eventType);
      for (const target of transition.target ?? []) {
        out.push({
          source: node.id,
          target: target.id,
          eventType,
          label: edgeLabel(eventType, transition.guard, delayOf(transition)),
        });
      }
    }
    Object.values(node.states).forEach(visit);
  };
  Object.values(machine.root.states).forEach(visit);
  return out;
}

/**
 * An edge as Mermaid draws it: between two children of one composite state (or of the root),
 * one per pair of ends. Mermaid cannot draw a transition that leaves or enters a composite
 * state from inside (it moves the inner state out of its parent), so such a transition is
 * lifted to the ancestors that are children of the innermost state holding both ends; each
 * line of the label names the inner states it stands for.
 */
export interface MermaidEdge {
  readonly source: string;
  readonly target: string;
  /** The innermost state node holding both ends (the composite state the edge is declared in). */
  readonly parent: string;
  /** The transitions drawn, grouped by the inner states they leave and enter. */
  readonly lines: readonly MermaidEdgeLine[];
}

/** Transitions between the same inner states, on one line of a {@link MermaidEdge}'s label. */
export interface MermaidEdgeLine {
  /** Each transition's event part and guard, as {@link DiagramTransition.label}. */
  readonly labels: readonly string[];
  /** Keys of the inner states left, when lifted (in document order); empty when not lifted. */
  readonly from: readonly string[];
  /** Keys of the inner states entered, when lifted. */
  readonly to: readonly string[];
}

/** Every transition of `machine` as Mermaid can draw it (see {@link MermaidEdge}). */
export function mermaidEdges(machine: AnyStateMachine): MermaidEdge[] {
  const inner = (id: string): string => id.split('.').at(-1) ?? id;
  const add = (list: string[], item: string): void => {
    if (!list.includes(item)) list.push(item);
  };
  // One entry per lifted ends and label: the inner states it stands for.
  const byLabel = new Map<
    string,
    { source: string; target: string; parent: string; label: string; from: string[]; to: string[] }
  >();
  for (const t of diagramTransitions(machine)) {
    const parent = commonParent(t.source, t.target);
    const source = childOnPath(parent, t.source);
    const target = childOnPath(parent, t.target);
    const key = `${source}\n${target}\n${t.label}`;
    const entry = byLabel.get(key) ?? { source, target, parent, label: t.label, from: [], to: [] };
    byLabel.set(key, entry);
    if (source !== t.source) add(entry.from, inner(t.source));
    if (target !== t.target) add(entry.to, inner(t.target));
  }
  const edges = new Map<string, { edge: MermaidEdge; lines: Map<string, MermaidEdgeLine> }>();
  for (const { source, target, parent, label, from, to } of byLabel.values()) {
    const key = `${source}\n${target}`;
    const entry = edges.get(key) ?? {
      edge: { source, target, parent, lines: [] },
      lines: new Map<string, MermaidEdgeLine>(),
    };
    edges.set(key, entry);
    const lineKey = `${from.join(',')}\n${to.join(',')}`;
    const line = entry.lines.get(lineKey) ?? { labels: [], from, to };
    entry.lines.set(lineKey, { ...line, labels: [...line.labels, label] });
  }
  return [...edges.values()].map(({ edge, lines }) => ({ ...edge, lines: [...lines.values()] }));
}

/**
 * A Mermaid edge's label: per line, the transitions' labels joined by `, `, then the inner
 * states they stand for (`node.stop (from standby, syncing)`); lines joined by `<br/>`.
 */
export function mermaidEdgeLabel(edge: MermaidEdge): string {
  return edge.lines
    .map((line) => {
      const ends = [
        line.from.length > 0 ? `from ${line.from.join(', ')}` : '',
        line.to.length > 0 ? `to ${line.to.join(', ')}` : '',
      ].filter((part) => part !== '');
      const labels = line.labels.join(', ');
      return ends.length === 0 ? labels : `${labels} (${ends.join('; ')})`;
    })
    .join('<br/>');
}

/**
 * The machine as a Mermaid `stateDiagram-v2` (drawn correctly by Mermaid 11): compound
 * states are composite states, each with its initial state; final states lead to `[*]`; a
 * state that invokes actors is declared with its name (`state "primary" as primary`) and
 * lists them as its description (`primary : invoke serve`), so both show. Every transition
 * with a target is an edge labelled with its event (`after(delay)`, `always`, `onDone(actor)`,
 * `onError(actor)`) and guard (`[name]`), declared in the composite state holding both ends,
 * as {@link mermaidEdges} lifts it.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const root = describeState(machine.root);
  const mermaidId = diagramIds(machine);
  const edges = mermaidEdges(machine);
  const lines: string[] = ['stateDiagram-v2'];
  const emit = (state: DiagramState, depth: number): void => {
    const pad = '  '.repeat(depth);
    const id = mermaidId(state.id);
    if (state.children.length > 0) {
      // Mermaid has no label on a composite state (`state "x" as id {` is a syntax error).
      lines.push(`${pad}state ${id} {`);
      emitBody(state, depth + 1);
      lines.push(`${pad}}`);
    } else if (state.invokes.length > 0 || id !== state.key) {
      // Without the `state "name" as id` line, Mermaid 11 shows a description in place of the name.
      lines.push(`${pad}state "${state.key}" as ${id}`);
    } else {
      lines.push(`${pad}${id}`);
    }
    if (state.children.length === 0) {
      for (const actor of state.invokes) lines.push(`${pad}${id} : invoke ${actor}`);
    }
    if (state.type === 'final') lines.push(`${pad}${id} --> [*]`);
  };
  const emitBody = (parent: DiagramState, depth: number): void => {
    const pad = '  '.repeat(depth);
    for (const initial of parent.initial) lines.push(`${pad}[*] --> ${mermaidId(initial)}`);
    parent.children.forEach((child, i) => {
      // The regions of a parallel state are separated by `--`.
      if (i > 0 && parent.type === 'parallel') lines.push(`${pad}--`);
      emit(child, depth);
    });
    for (const edge of edges) {
      if (edge.parent !== parent.id) continue;
      const label = mermaidEdgeLabel(edge);
      lines.push(`${pad}${mermaidId(edge.source)} --> ${mermaidId(edge.target)} : ${label}`);
    }
  };
  emitBody(root, 1);
  return `${lines.join('\n')}\n`;
}

/**
 * The machine as PlantUML (`@startuml` ... `@enduml`): compound states are nested `state X
 * { }` blocks with their initial state; final states lead to `[*]`; invoked actors are state
 * descriptions; every transition with a target is an edge labelled like {@link toMermaid}.
 */
export function toPlantUml(machine: AnyStateMachine): string {
  const root = describeState(machine.root);
  const plantUmlId = diagramIds(machine);
  const lines: string[] = ['@startuml', `title ${root.key}`, 'hide empty description'];
  const emit = (state: DiagramState, depth: number): void => {
    const pad = '  '.repeat(depth);
    const id = plantUmlId(state.id);
    const declared = id === state.key ? `state ${id}` : `state "${state.key}" as ${id}`;
    if (state.children.length > 0) {
      lines.push(`${pad}${declared} {`);
      const inner = '  '.repeat(depth + 1);
      for (const initial of state.initial) lines.push(`${inner}[*] --> ${plantUmlId(initial)}`);
      state.children.forEach((child, i) => {
        if (i > 0 && state.type === 'parallel') lines.push(`${inner}--`);
        emit(child, depth + 1);
      });
      lines.push(`${pad}}`);
    } else {
      lines.push(`${pad}${declared}`);
    }
    for (const actor of state.invokes) lines.push(`${pad}${id} : invoke ${actor}`);
    if (state.type === 'final') lines.push(`${pad}${id} --> [*]`);
  };
  for (const initial of root.initial) lines.push(`[*] --> ${plantUmlId(initial)}`);
  root.children.forEach((child) => emit(child, 0));
  for (const t of diagramTransitions(machine)) {
    lines.push(`${plantUmlId(t.source)} --> ${plantUmlId(t.target)} : ${t.label}`);
  }
  lines.push('@enduml');
  return `${lines.join('\n')}\n`;
}

/**
 * The diagram id of each state node: its key (`standby`) when every key in the machine is
 * unique and a plain identifier, else its path below the root joined by `_`
 * (`running_standby`). Mermaid allows neither dots nor labels on composite states, so
 * short unique ids keep the diagram readable.
 */
export function diagramIds(machine: AnyStateMachine): (stateId: string) => string {
  const ids = diagramStateIds(machine);
  const keys = ids.map((id) => id.split('.').at(-1) ?? id);
  const byKey = new Set(keys).size === keys.length && keys.every((k) => /^[A-Za-z_]\w*$/.test(k));
  const map = new Map(
    ids.map((id, i) => [
      id,
      byKey
        ? (keys[i] ?? id)
        : id
            .split('.')
            .slice(1)
            .join('_')
            .replace(/[^A-Za-z0-9_]/g, '_'),
    ]),
  );
  return (stateId) => map.get(stateId) ?? stateId.replace(/[^A-Za-z0-9_]/g, '_');
}

function describeState(node: AnyStateNode): DiagramState {
  return {
    id: node.id,
    key: node.key,
    type: node.type,
    children: Object.values(node.states).map(describeState),
    initial:
      node.type === 'compound' ? (node.initial.target ?? []).map((t: AnyStateNode) => t.id) : [],
    invokes: node.invoke.map((invoke) =>
      typeof invoke.src === 'string' && invoke.src !== invoke.id
        ? `${invoke.id} (${invoke.src})`
        : invoke.id,
    ),
  };
}

/**
 * The ancestor-or-self of `id` that is a child of `parent` (`parent` holds `id`).
 */
function childOnPath(parent: string, id: string): string {
  const depth = parent.split('.').length + 1;
  return id.split('.').slice(0, depth).join('.');
}

/** The id of the innermost state node that contains both `a` and `b` (neither of them). */
function commonParent(a: string, b: string): string {
  const pa = a.split('.');
  const pb = b.split('.');
  let n = 0;
  while (n < pa.length - 1 && n < pb.length - 1 && pa[n] === pb[n]) n++;
  return pa.slice(0, n).join('.');
}

function delayOf(transition: object): string | number | undefined {
  const delay = (transition as { delay?: unknown }).delay;
  return typeof delay === 'string' || typeof delay === 'number' ? delay : undefined;
}

const DONE_ACTOR = 'xstate.done.actor.';
const ERROR_ACTOR = 'xstate.error.actor.';
const DONE_STATE = 'xstate.done.state.';

/** The event part of an edge label, then the guard in brackets. */
function edgeLabel(eventType: string, guard: unknown, delay: string | number | undefined): string {
  let event: string;
  if (eventType === '') event = 'always';
  else if (delay !== undefined)
    event = `after(${typeof delay === 'number' ? `${delay}ms` : delay})`;
  else if (eventType.startsWith(DONE_ACTOR))
    event = `onDone(${eventType.slice(DONE_ACTOR.length)})`;
  else if (eventType.startsWith(ERROR_ACTOR)) {
    event = `onError(${eventType.slice(ERROR_ACTOR.length)})`;
  } else if (eventType.startsWith(DONE_STATE)) event = 'onDone';
  else event = eventType;
  const guardName = describeGuard(guard);
  return guardName === undefined ? event : `${event} [${guardName}]`;
}

/**
 * A guard's name: a named guard (`'mayCampaign'`, `{ type }`) by its name; an inline function
 * by its own name (`function campaignWon() {}`), else by its expression when it is a short
 * one (`event.output.won`), else `guarded`.
 */
function describeGuard(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && 'type' in guard && typeof guard.type === 'string') {
    return guard.type;
  }
  if (typeof guard === 'function' && 'guards' in guard && Array.isArray(guard.guards)) {
    // xstate's higher-order guards: not(g), and([...]), or([...]).
    const parts = (guard.guards as unknown[]).map((g) => describeGuard(g) ?? 'guarded');
    if (guard.name === 'not') return `!${parts.join('')}`;
    if (guard.name === 'and' || guard.name === 'or') {
      return parts.join(guard.name === 'and' ? ' && ' : ' || ');
    }
  }
  if (typeof guard === 'function') {
    // An arrow function written as `guard: () => ...` is named `guard` after the property.
    if (guard.name !== '' && guard.name !== 'guard') return guard.name;
    const body = /=>\s*([^{][^]*)$/.exec(guard.toString())?.[1]?.trim();
    if (body !== undefined && body.length <= 48 && /^[\w.!=&| ]+$/.test(body)) return body;
  }
  return 'guarded';
}
