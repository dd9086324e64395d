// The inspect page drawn from its model: the charts (each node's active state in its colour),
// a card per node (epoch, applied seq, lag, last verification), the timeline, the replay
// controls, the connection badge and the "no primary" banner.
import type { ChartLayout } from '../chartLayout.ts';
import { COLORS, drawChart, el, highlight } from './chart.ts';
import { model, shown, type RootActor } from './model.ts';

const TIMELINE_ROWS = 400;

/** The page's element `id`, typed (the page is index.html: a missing one is a bug). */
export function byId<E extends HTMLElement = HTMLElement>(id: string): E {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`inspect page: no #${id}`);
  return element as E;
}

/** Each node's colour: by its place among the nodes known, in id order (n1 blue, n2 orange...). */
function colorIndex(node: string): number {
  if (!model.colorOf.has(node)) {
    model.colorOf.set(node, 0);
    [...model.colorOf.keys()]
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .forEach((id, i) => model.colorOf.set(id, i % COLORS.length));
  }
  return model.colorOf.get(node) ?? 0;
}

function time(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  return `${d.toLocaleTimeString('en-GB', { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

async function ensureChart(machine: string | undefined): Promise<void> {
  if (machine === undefined || model.charts.has(machine)) return;
  model.charts.set(machine, null);
  const res = await fetch(`/api/chart?machine=${encodeURIComponent(machine)}`);
  if (!res.ok) return;
  const layout = (await res.json()) as ChartLayout;
  model.charts.set(machine, { layout, svg: drawChart(layout) });
  scheduleRender();
}

/** The latest root actor per node, from the state shown. */
function actorsByNode(roots: Iterable<RootActor>): Map<string, RootActor> {
  const byNode = new Map<string, RootActor>();
  for (const root of roots) {
    const before = byNode.get(root.node);
    if (before === undefined || root.index > before.index) byNode.set(root.node, root);
  }
  return byNode;
}

/** Live: the node's stream is closed. Replay: its recording ended with its machine running. */
function nodeGone(node: string, byNode: ReadonlyMap<string, RootActor>): boolean {
  if (model.mode !== 'live') return byNode.get(node)?.ended === true;
  const view = model.nodeViews.get(node);
  return view !== undefined && !view.connected;
}

/** What a card shows of a node's machine context (the fields the node machine keeps). */
interface CardContext {
  /** Recordings made before the machine kept `lag` instead carry the applied seq. */
  readonly appliedSeq?: number;
  readonly lag?: number;
  readonly logLastSeq?: number;
  readonly verificationHealthy?: boolean;
  readonly lastFault?: string;
}

function renderCards(byNode: ReadonlyMap<string, RootActor>): void {
  const container = byId('nodes');
  const ids = [...new Set([...model.nodeViews.keys(), ...byNode.keys()])].sort();
  container.replaceChildren();
  for (const id of ids) {
    const view = model.nodeViews.get(id);
    const root = byNode.get(id);
    const context = (root?.snapshot.context ?? {}) as CardContext;
    const gone = nodeGone(id, byNode);
    // Role, star and epoch all come from the node's newest snapshot record (one source): the
    // status poll only fills in while no record has arrived.
    const role = gone ? 'gone' : (root?.role ?? view?.state ?? '?');
    const live = model.mode === 'live' && view !== undefined && !gone ? view : undefined;
    const epoch = root?.epoch ?? (live !== undefined ? live.epoch : null);
    // The machine keeps the lag, not the applied seq (the committed store's); a recording made
    // before it did still carries `appliedSeq`.
    const applied =
      live !== undefined && live.appliedSeq !== null
        ? live.appliedSeq
        : (context.appliedSeq ?? (context.logLastSeq ?? 0) - (context.lag ?? 0));
    const lag =
      live !== undefined && live.lagEntries !== null
        ? live.lagEntries
        : (context.lag ?? Math.max(0, (context.logLastSeq ?? 0) - (context.appliedSeq ?? 0)));
    const verification =
      live !== undefined && live.lastVerification !== null
        ? live.lastVerification
        : context.verificationHealthy === false
          ? 'unhealthy'
          : context.verificationHealthy === true
            ? 'healthy'
            : '-';
    const card = el('div', {
      class: `node${gone ? ' gone' : ''}${model.focus === id ? ' focused' : ''}`,
      'data-node': id,
    });
    card.style.setProperty('--color', COLORS[colorIndex(id)] ?? '');
    const h = el('h2');
    h.append(
      el(
        'span',
        { title: role === 'primary' ? 'primary (holds the leader key)' : '' },
        `${id}${role === 'primary' ? ' ★' : ''}`,
      ),
      el('span', { class: `role ${role}` }, role),
    );
    card.append(h);
    const dl = el('dl');
    const row = (k: string, v: string | number | null | undefined): void =>
      dl.append(el('dt', {}, k), el('dd', {}, v === undefined || v === null ? '-' : String(v)));
    row('epoch', epoch);
    row('applied seq', applied);
    row(
      'lag',
      live?.lagMs !== null && live?.lagMs !== undefined ? `${lag} (${live.lagMs} ms)` : lag,
    );
    row('last verification', verification);
    if (model.mode === 'live') {
      row(
        gone ? 'gone since' : 'stream',
        gone ? time(view?.since ?? Number.NaN) : view?.connected === true ? 'open' : 'waiting',
      );
    }
    if (context.lastFault !== undefined) row('last fault', context.lastFault);
    card.append(dl);
    card.addEventListener('click', () => {
      model.focus = model.focus === id ? undefined : id;
      render();
    });
    container.append(card);
  }
}

function renderTimeline(): void {
  const body = byId('events');
  const upTo = model.mode === 'replay' ? model.position : Number.POSITIVE_INFINITY;
  const showProgress = byId<HTMLInputElement>('show-progress').checked;
  const rows = model.rows.filter(
    (r) =>
      r.index <= upTo &&
      (showProgress || r.progress !== true) &&
      (model.focus === undefined || r.node === model.focus),
  );
  const last = rows.at(-1);
  body.replaceChildren();
  for (const r of rows.slice(-TIMELINE_ROWS).reverse()) {
    const tr = el('tr', {
      class: `${r.change ? 'change' : ''}${r.progress === true ? ' progress' : ''}${r === last && model.mode === 'replay' ? ' current' : ''}`,
    });
    const chip = el('span', { class: 'chip' }, r.node);
    chip.style.setProperty('--color', COLORS[colorIndex(r.node)] ?? '');
    const nodeCell = el('td');
    nodeCell.append(chip);
    tr.append(
      el('td', {}, time(r.at)),
      nodeCell,
      el('td', { class: 'event', title: r.raw }, r.event),
      el('td', { title: r.afterRaw ?? '' }, r.after),
    );
    body.append(tr);
  }
}

function renderReplayControls(): void {
  const slider = byId<HTMLInputElement>('slider');
  slider.max = String(Math.max(0, model.records.length - 1));
  slider.value = String(model.position);
  const record = model.records[model.position];
  byId('position').textContent =
    record === undefined
      ? 'no records'
      : `${time(Number(record.createdAt))}  record ${model.position + 1} / ${model.records.length}`;
}

let pending = false;
/** Renders on the next frame (once, however many records arrive before it). */
export function scheduleRender(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

/** Draws the whole page from the model. */
export function render(): void {
  const state = shown();
  const byNode = actorsByNode(state.roots.values());
  const chartsEl = byId('charts');
  for (const root of state.roots.values()) void ensureChart(root.machine);
  for (const [machine, chart] of model.charts) {
    if (chart === null) continue;
    if (chart.svg.parentElement !== chartsEl) chartsEl.append(chart.svg);
    const actors = [...byNode.values()]
      .filter(
        (r) => r.machine === machine && !nodeGone(r.node, byNode) && r.snapshot.status === 'active',
      )
      .filter((r) => model.focus === undefined || r.node === model.focus)
      .map((r) => ({ node: r.node, label: r.node, value: r.snapshot.value }));
    highlight(chart, actors, colorIndex);
  }
  renderCards(byNode);
  renderTimeline();
  if (model.mode === 'replay') renderReplayControls();
  byId('problem').textContent = model.problem ?? '';
  renderBadge();
  renderBanner(byNode);
}

let streamOpen = false;
/** The page's stream opened (true) or failed (false): the badge says so. */
export function setStreamOpen(open: boolean): void {
  streamOpen = open;
  renderBadge();
}

/** Green only when the page's stream is open and the server reads the cluster without error. */
function renderBadge(): void {
  const badge = byId('connection');
  if (!streamOpen) {
    badge.textContent = 'disconnected: retrying';
    badge.className = 'badge bad';
  } else if (model.problem !== undefined) {
    badge.textContent = model.mode === 'live' ? 'cluster unreachable' : 'problem';
    badge.className = 'badge bad';
  } else {
    badge.textContent = model.mode === 'replay' ? 'replay loaded' : 'connected';
    badge.className = 'badge ok';
  }
}

/**
 * No node shown primary: a banner, with the countdown to the dead primary's lease expiry (its
 * TTL from etcd, from when the primary was last seen: its stream closed, or its recording ended).
 */
function renderBanner(byNode: ReadonlyMap<string, RootActor>): void {
  const banner = byId('banner');
  const nodes = [...byNode.values()];
  const primary = nodes.find((r) => r.role === 'primary' && !nodeGone(r.node, byNode));
  if (primary !== undefined || nodes.length === 0) {
    banner.hidden = true;
    banner.textContent = '';
    return;
  }
  const lost = nodes
    .filter((r) => r.role === 'primary')
    .map((r) => {
      const view = model.nodeViews.get(r.node);
      const seen = model.mode === 'live' && view !== undefined ? view.since : r.at;
      return { node: r.node, seen };
    })[0];
  // Only a primary that vanished leaves its lease to expire (one that hands over resigns it).
  const seen = lost?.seen;
  let text = 'no primary';
  if (lost !== undefined) text += ` (${lost.node} gone)`;
  if (model.mode === 'live' && model.leaseTtlMs !== undefined && seen !== undefined) {
    const left = Math.ceil((seen + model.leaseTtlMs - Date.now()) / 1000);
    text += left > 0 ? ` - lease expires in ${left} s` : ' - lease expired: a standby takes over';
  } else {
    text += ' - election under way';
  }
  banner.textContent = text;
  banner.hidden = false;
}
