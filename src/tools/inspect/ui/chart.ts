// The inspect page's state chart: drawn from the server's layout (/api/chart), each node's
// active states highlighted in its colour and a chip naming it on its active leaf.
import type { ChartLayout } from '../chartLayout.ts';

/** A chart on the page: the server's layout and the element drawn from it. */
export interface Chart {
  readonly layout: ChartLayout;
  readonly svg: HTMLElement;
}

/** An actor shown on a chart: its node, the chip's label, its state value. */
export interface ChartActor {
  readonly node: string;
  readonly label: string;
  readonly value: unknown;
}

export const SVG = 'http://www.w3.org/2000/svg';
export const COLORS: readonly string[] = [
  '#2563eb',
  '#ea580c',
  '#16a34a',
  '#9333ea',
  '#db2777',
  '#0891b2',
  '#ca8a04',
  '#4b5563',
];
export const FILLS: readonly string[] = [
  '#dbeafe',
  '#ffedd5',
  '#dcfce7',
  '#f3e8ff',
  '#fce7f3',
  '#cffafe',
  '#fef9c3',
  '#e5e7eb',
];
/** The state node ids a state value makes active (`masterNode.running`, ...). */
function activeIds(machine: string, value: unknown): string[] {
  const ids: string[] = [];
  const walk = (prefix: string, v: unknown): void => {
    if (typeof v === 'string') {
      ids.push(`${prefix}.${v}`);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    for (const [key, child] of Object.entries(v)) {
      ids.push(`${prefix}.${key}`);
      walk(`${prefix}.${key}`, child);
    }
  };
  walk(machine, value);
  return ids;
}

/** An element (`svg:name`: an SVG one) with attributes and text. */
export function el(
  tag: string,
  attrs: Readonly<Record<string, string | number>> = {},
  text?: string,
): HTMLElement {
  // An SVG element is typed as an HTML one here: the page only sets attributes, style and
  // children on it, which both have.
  const e = tag.startsWith('svg:')
    ? (document.createElementNS(SVG, tag.slice(4)) as unknown as HTMLElement)
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The chart of `layout`, as an element holding its title and its SVG. */
export function drawChart(layout: ChartLayout): HTMLElement {
  const section = el('div', { class: 'chart', 'data-machine': layout.machine });
  section.append(el('h2', {}, `${layout.machine} machine`));
  const svg = el('svg:svg', {
    viewBox: `0 0 ${Math.ceil(layout.width)} ${Math.ceil(layout.height)}`,
    role: 'img',
  });
  // Never drawn larger than laid out (12px names), smaller only when the window is narrow.
  svg.style.setProperty('--natural-width', `${Math.ceil(layout.width * 1.15)}px`);
  const defs = el('svg:defs');
  const marker = el('svg:marker', {
    id: `arrow-${layout.machine}`,
    viewBox: '0 0 8 8',
    refX: 7,
    refY: 4,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse',
  });
  marker.append(el('svg:path', { d: 'M0,0 L8,4 L0,8 z', class: 'marker' }));
  defs.append(marker);
  svg.append(defs);
  const states = el('svg:g');
  // Parents first, so children are drawn on top of their compound state.
  const sorted = [...layout.states].sort((a, b) => a.id.split('.').length - b.id.split('.').length);
  for (const s of sorted) {
    const g = el('svg:g', { class: `state ${s.compound ? 'compound' : 'leaf'}`, 'data-id': s.id });
    g.append(
      el('svg:rect', { x: s.x, y: s.y, width: s.width, height: s.height, rx: s.compound ? 8 : 6 }),
    );
    if (s.compound) {
      g.append(el('svg:text', { x: s.x + 8, y: s.y + 16 }, s.key));
    } else {
      g.append(
        el('svg:text', { x: s.x + s.width / 2, y: s.y + 18, 'text-anchor': 'middle' }, s.key),
      );
      s.invokes.forEach((invoke, i) => {
        g.append(
          el(
            'svg:text',
            {
              x: s.x + s.width / 2,
              y: s.y + 30 + i * 12,
              'text-anchor': 'middle',
              class: 'invoke',
            },
            `invoke ${invoke}`,
          ),
        );
      });
    }
    if (s.final) {
      const inner = { x: s.x + 3, y: s.y + 3, width: s.width - 6, height: s.height - 6, rx: 4 };
      g.append(el('svg:rect', { ...inner, class: 'final' }));
    }
    states.append(g);
  }
  svg.append(states);
  const edges = el('svg:g');
  for (const e of layout.edges) {
    if (e.points.length < 2) continue;
    const g = el('svg:g', { class: 'edge', 'data-source': e.source, 'data-target': e.target });
    g.append(
      el('svg:path', {
        d: `M${e.points.map((p) => `${p.x},${p.y}`).join(' L')}`,
        'marker-end': `url(#arrow-${layout.machine})`,
      }),
    );
    const labelAt = e.labelAt;
    if (labelAt !== undefined) {
      e.labels.forEach((label, i) => {
        g.append(el('svg:text', { x: labelAt.x + 2, y: labelAt.y + 10 + i * 12 }, label));
      });
    }
    edges.append(g);
  }
  svg.append(edges);
  // Initial-state dots.
  for (const [parent, targets] of Object.entries(layout.initial)) {
    for (const target of targets) {
      const t = layout.states.find((s) => s.id === target);
      if (t === undefined || parent === undefined) continue;
      svg.append(el('svg:circle', { cx: t.x - 7, cy: t.y + 7, r: 4, class: 'marker' }));
    }
  }
  svg.append(el('svg:g', { class: 'chips' }));
  section.append(svg);
  return section;
}

/**
 * Highlights each shown actor's active states and puts its chip on its active leaf;
 * `colorIndex(node)` is the node's place in {@link COLORS}.
 */
export function highlight(
  chart: Chart,
  actors: readonly ChartActor[],
  colorIndex: (node: string) => number,
): void {
  const svg = chart.svg.querySelector('svg');
  if (svg === null) return;
  for (const g of svg.querySelectorAll<SVGGElement>('g.state')) {
    g.classList.remove('active');
    g.style.removeProperty('--color');
    g.style.removeProperty('--fill');
  }
  const chips = svg.querySelector('g.chips');
  chips?.replaceChildren();
  const perLeaf = new Map<string, ChartActor[]>();
  for (const actor of actors) {
    const ids = activeIds(chart.layout.machine, actor.value);
    const c = colorIndex(actor.node);
    for (const id of ids) {
      const g = svg.querySelector<SVGGElement>(`g.state[data-id="${CSS.escape(id)}"]`);
      if (g === null) continue;
      if (!g.classList.contains('active')) {
        g.classList.add('active');
        g.style.setProperty('--color', COLORS[c] ?? '');
        g.style.setProperty('--fill', FILLS[c] ?? '');
      }
      if (g.classList.contains('leaf')) perLeaf.set(id, [...(perLeaf.get(id) ?? []), actor]);
    }
  }
  for (const [id, onLeaf] of perLeaf) {
    const s = chart.layout.states.find((x) => x.id === id);
    if (s === undefined) continue;
    let x = s.x + s.width - 2;
    for (const actor of onLeaf) {
      const w = 10 + actor.label.length * 7;
      x -= w;
      const g = el('svg:g', { class: 'nodechip', 'data-node': actor.node, 'data-state': id });
      g.style.setProperty('--color', COLORS[colorIndex(actor.node)] ?? '');
      g.append(el('svg:rect', { x, y: s.y - 9, width: w, height: 15, rx: 7 }));
      g.append(el('svg:text', { x: x + 5, y: s.y + 2 }, actor.label));
      chips?.append(g);
      x -= 3;
    }
  }
}
