/**
 * A state chart laid out for the inspect page: every state node of a machine as a box (a
 * compound state holds its children), every transition as a routed edge with its label, all
 * in absolute coordinates. Generated from the machine definition with the same walk as the
 * diagrams (`understudy machines`) and laid out by ELK's layered algorithm, which routes edges
 * across the nesting of compound states.
 */
import { createRequire } from 'node:module';
import type {
  ELK as ElkLayouter,
  ELKConstructorArguments,
  ElkExtendedEdge,
  ElkNode,
} from 'elkjs/lib/elk-api.js';
import type { AnyStateMachine } from 'xstate';
import { diagramRoot, diagramTransitions, type DiagramState } from '../diagram.ts';

/** Text metrics the page draws with (monospace, so widths are known here). */
export const CHART_FONT = {
  /** State names: 12px monospace. */
  nameCharWidth: 7.3,
  nameLineHeight: 16,
  /** Invoked actors and edge labels: 10px monospace. */
  smallCharWidth: 6.1,
  smallLineHeight: 12,
} as const;

export interface ChartState {
  /** The XState state node id (`masterNode.running.standby`). */
  readonly id: string;
  readonly key: string;
  readonly parent: string | undefined;
  readonly compound: boolean;
  readonly final: boolean;
  readonly invokes: readonly string[];
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface ChartEdge {
  readonly source: string;
  readonly target: string;
  /** One line per transition between the two states (`lease.lost`, `onDone(promote)`). */
  readonly labels: readonly string[];
  /** The route, start to end (absolute). */
  readonly points: readonly { readonly x: number; readonly y: number }[];
  /** Where the label's top-left corner goes (absolute). */
  readonly labelAt: { readonly x: number; readonly y: number } | undefined;
}

export interface ChartLayout {
  /** The machine's id (`masterNode`). */
  readonly machine: string;
  readonly width: number;
  readonly height: number;
  readonly states: readonly ChartState[];
  readonly edges: readonly ChartEdge[];
  /** The initial state of the root and of every compound state, by parent id. */
  readonly initial: Readonly<Record<string, readonly string[]>>;
}

/**
 * ELK, loaded on first use: the bundle is large and every `understudy` command (a node too)
 * loads this module through the CLI. elkjs is CommonJS: its bundled build is the ELK class.
 */
function loadElk(): ElkLayouter {
  const Elk = createRequire(import.meta.url)('elkjs/lib/elk.bundled.js') as new (
    args?: ELKConstructorArguments,
  ) => ElkLayouter;
  return new Elk();
}

/** Room at the top of a compound state for its name. */
const HEADER = 22;

function leafSize(state: DiagramState): { width: number; height: number } {
  const nameWidth = state.key.length * CHART_FONT.nameCharWidth;
  const invokeWidth = Math.max(
    0,
    ...state.invokes.map((i) => `invoke ${i}`.length * CHART_FONT.smallCharWidth),
  );
  return {
    width: Math.ceil(Math.max(nameWidth, invokeWidth) + 20),
    height: Math.ceil(
      10 + CHART_FONT.nameLineHeight + state.invokes.length * CHART_FONT.smallLineHeight,
    ),
  };
}

function toElk(state: DiagramState): ElkNode {
  if (state.children.length === 0) return { id: state.id, ...leafSize(state) };
  return {
    id: state.id,
    layoutOptions: { 'elk.padding': `[top=${HEADER + 8},left=12,bottom=12,right=12]` },
    children: state.children.map(toElk),
  };
}

/** Lays out `machine` as a chart (ELK runs in this process; ~100 ms for the node machine). */
export async function layoutChart(machine: AnyStateMachine): Promise<ChartLayout> {
  const root = diagramRoot(machine);
  const grouped = new Map<string, { source: string; target: string; labels: string[] }>();
  for (const t of diagramTransitions(machine)) {
    const key = `${t.source}\n${t.target}`;
    const entry = grouped.get(key) ?? { source: t.source, target: t.target, labels: [] };
    if (!entry.labels.includes(t.label)) entry.labels.push(t.label);
    grouped.set(key, entry);
  }
  const edges: ElkExtendedEdge[] = [...grouped.values()].map((e, i) => ({
    id: `e${i}`,
    sources: [e.source],
    targets: [e.target],
    labels: [
      {
        text: e.labels.join('\n'),
        width: Math.ceil(
          Math.max(...e.labels.map((l) => l.length)) * CHART_FONT.smallCharWidth + 4,
        ),
        height: e.labels.length * CHART_FONT.smallLineHeight + 2,
      },
    ],
  }));
  const graph: ElkNode = {
    id: root.id,
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '28',
      'elk.spacing.nodeNode': '18',
      'elk.spacing.edgeLabel': '2',
      'elk.spacing.edgeEdge': '8',
      'elk.layered.spacing.edgeNodeBetweenLayers': '10',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.padding': '[top=10,left=10,bottom=10,right=10]',
    },
    children: root.children.map(toElk),
    edges,
  };
  const laid = await loadElk().layout(graph);

  const states: ChartState[] = [];
  const offsets = new Map<string, { x: number; y: number }>([[root.id, { x: 0, y: 0 }]]);
  const byId = new Map<string, DiagramState>();
  const index = (s: DiagramState): void => {
    byId.set(s.id, s);
    s.children.forEach(index);
  };
  index(root);
  const initial: Record<string, string[]> = {};
  const walk = (node: ElkNode, parent: string, origin: { x: number; y: number }): void => {
    const state = byId.get(node.id);
    if (state === undefined) return;
    const x = origin.x + (node.x ?? 0);
    const y = origin.y + (node.y ?? 0);
    offsets.set(node.id, { x, y });
    states.push({
      id: state.id,
      key: state.key,
      parent: parent === root.id ? undefined : parent,
      compound: state.children.length > 0,
      final: state.type === 'final',
      invokes: state.invokes,
      x,
      y,
      width: node.width ?? 0,
      height: node.height ?? 0,
    });
    if (state.initial.length > 0) initial[state.id] = [...state.initial];
    for (const child of node.children ?? []) walk(child, state.id, { x, y });
  };
  initial[root.id] = [...root.initial];
  for (const child of laid.children ?? []) walk(child, root.id, { x: 0, y: 0 });

  const chartEdges: ChartEdge[] = (laid.edges ?? []).map((edge, i) => {
    const info = [...grouped.values()][i];
    // ELK gives edge coordinates relative to the edge's container (the common ancestor).
    const origin = offsets.get(edge.container ?? root.id) ?? { x: 0, y: 0 };
    const points = (edge.sections ?? []).flatMap((section) => [
      section.startPoint,
      ...(section.bendPoints ?? []),
      section.endPoint,
    ]);
    const label = edge.labels?.[0];
    return {
      source: info?.source ?? '',
      target: info?.target ?? '',
      labels: info?.labels ?? [],
      points: points.map((p) => ({ x: origin.x + p.x, y: origin.y + p.y })),
      labelAt:
        label?.x === undefined || label.y === undefined
          ? undefined
          : { x: origin.x + label.x, y: origin.y + label.y },
    };
  });
  return {
    machine: root.key,
    width: laid.width ?? 0,
    height: laid.height ?? 0,
    states,
    edges: chartEdges,
    initial,
  };
}
