/* global document, window, EventSource, fetch, requestAnimationFrame, setInterval */
// The inspect page: one state chart per machine, every node's active state highlighted in the
// node's colour, a card per node (epoch, applied seq, lag, last verification), the timeline.
// Live, it follows /api/stream; replaying, the same records arrive at once and a slider and
// step buttons choose the moment shown. No library, no network beyond this page's server.

import { COLORS, drawChart, el, highlight } from './chart.js';

const TIMELINE_ROWS = 400;

const model = {
  mode: 'live',
  /** Every record, in order. */
  records: [],
  /** Live: the state after the last record. Replay: computed for `position`. */
  live: emptyState(),
  position: 0,
  /** The timeline: one row per event sent to a root actor (with the state it led to). */
  rows: [],
  rowOfRoot: new Map(),
  nodeViews: new Map(),
  problem: undefined,
  charts: new Map(),
  colorOf: new Map(),
  focus: undefined,
  historyDone: false,
};

function emptyState() {
  return { roots: new Map() };
}

function machineIdOf(definition) {
  try {
    const id = JSON.parse(definition).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Applies one record to a state (which roots exist, and each one's snapshot). */
function apply(state, record, index) {
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
  if (record.type === '@understudy.recordingEnded' && root !== undefined) {
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
function stateAt(n) {
  const state = emptyState();
  for (let i = 0; i <= n && i < model.records.length; i++) apply(state, model.records[i], i);
  return state;
}

function shown() {
  return model.mode === 'replay' ? stateAt(model.position) : model.live;
}

/** Records a row for the timeline; snapshots that change state fill in "state after". */
function addRow(record, index) {
  const rootKnown = model.live.roots.has(record.sessionId) || record.type === '@xstate.actor';
  if (!rootKnown) return;
  if (record.type === '@understudy.recordingEnded') {
    model.rows.push({
      index,
      at: Number(record.createdAt),
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
    const row = {
      index,
      at: Number(record.createdAt),
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
    const row = {
      index,
      at: Number(record.createdAt),
      node: record.node,
      event: record.folded > 0 ? `${words} ×${record.folded + 1}` : words,
      raw: record.folded > 0 ? `${type} ×${record.folded + 1}` : type,
      eventType: type,
      progress: type === 'oplog.progress',
      after: '',
      change: false,
    };
    model.rows.push(row);
    model.rowOfRoot.set(record.sessionId, row);
    return;
  }
  if (record.type === '@xstate.snapshot') {
    const row = model.rowOfRoot.get(record.sessionId);
    const before = valueText(model.live.roots.get(record.sessionId)?.snapshot?.value);
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
}

function valueText(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => (typeof v === 'string' ? `${k}.${v}` : `${k}.${valueText(v)}`))
    .join(', ');
}

/** A state as a person reads it: the role, then the innermost state (`standby: awaitingCampaign`). */
function stateWords(role, value) {
  let leaf = value;
  while (leaf !== null && typeof leaf === 'object') leaf = Object.values(leaf)[0];
  if (typeof leaf !== 'string') return role ?? '';
  if (role === undefined || role === leaf) return leaf;
  return `${role}: ${leaf}`;
}

/** Each node's colour: by its place among the nodes known, in id order (n1 blue, n2 orange...). */
function colorIndex(node) {
  if (!model.colorOf.has(node)) {
    model.colorOf.set(node, 0);
    [...model.colorOf.keys()]
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .forEach((id, i) => model.colorOf.set(id, i % COLORS.length));
  }
  return model.colorOf.get(node);
}

function time(ms) {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  return `${d.toLocaleTimeString('en-GB', { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

// ---- charts ------------------------------------------------------------------------------

async function ensureChart(machine) {
  if (machine === undefined || model.charts.has(machine)) return;
  model.charts.set(machine, null);
  const res = await fetch(`/api/chart?machine=${encodeURIComponent(machine)}`);
  if (!res.ok) return;
  const layout = await res.json();
  model.charts.set(machine, { layout, svg: drawChart(layout) });
  scheduleRender();
}

// ---- cards and timeline ------------------------------------------------------------------

/** The latest root actor per node, from the state shown. */
function actorsByNode(state) {
  const byNode = new Map();
  for (const root of state.roots.values()) {
    const before = byNode.get(root.node);
    if (before === undefined || root.index > before.index) byNode.set(root.node, root);
  }
  return byNode;
}

/** Live: the node's stream is closed. Replay: its recording ended with its machine running. */
function nodeGone(node, byNode) {
  if (model.mode !== 'live') return byNode?.get(node)?.ended === true;
  const view = model.nodeViews.get(node);
  return view !== undefined && !view.connected;
}

function renderCards(byNode) {
  const container = document.getElementById('nodes');
  const ids = [...new Set([...model.nodeViews.keys(), ...byNode.keys()])].sort();
  container.replaceChildren();
  for (const id of ids) {
    const view = model.nodeViews.get(id);
    const root = byNode.get(id);
    const context = root?.snapshot?.context ?? {};
    const gone = nodeGone(id, byNode);
    // Role, star and epoch all come from the node's newest snapshot record (one source): the
    // status poll only fills in while no record has arrived.
    const role = gone ? 'gone' : (root?.role ?? view?.state ?? '?');
    const live = model.mode === 'live' && view !== undefined && !gone;
    const epoch = root?.epoch ?? (live ? view.epoch : null);
    // The machine keeps the lag, not the applied seq (the committed store's); a recording made
    // before it did still carries `appliedSeq`.
    const applied =
      live && view.appliedSeq !== null
        ? view.appliedSeq
        : (context.appliedSeq ?? (context.logLastSeq ?? 0) - (context.lag ?? 0));
    const lag =
      live && view.lagEntries !== null
        ? view.lagEntries
        : (context.lag ?? Math.max(0, (context.logLastSeq ?? 0) - (context.appliedSeq ?? 0)));
    const verification =
      live && view.lastVerification !== null
        ? view.lastVerification
        : context.verificationHealthy === false
          ? 'unhealthy'
          : context.verificationHealthy === true
            ? 'healthy'
            : '-';
    const c = colorIndex(id);
    const card = el('div', {
      class: `node${gone ? ' gone' : ''}${model.focus === id ? ' focused' : ''}`,
      'data-node': id,
    });
    card.style.setProperty('--color', COLORS[c]);
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
    const row = (k, v) =>
      dl.append(el('dt', {}, k), el('dd', {}, v === undefined || v === null ? '-' : String(v)));
    row('epoch', epoch);
    row('applied seq', applied);
    row(
      'lag',
      lag === undefined
        ? '-'
        : view?.lagMs !== null && view?.lagMs !== undefined && live
          ? `${lag} (${view.lagMs} ms)`
          : lag,
    );
    row('last verification', verification);
    if (model.mode === 'live')
      row(
        gone ? 'gone since' : 'stream',
        gone ? time(view.since) : view?.connected ? 'open' : 'waiting',
      );
    if (context.lastFault !== undefined) row('last fault', context.lastFault);
    card.append(dl);
    card.addEventListener('click', () => {
      model.focus = model.focus === id ? undefined : id;
      render();
    });
    container.append(card);
  }
}

function renderTimeline() {
  const body = document.getElementById('events');
  const upTo = model.mode === 'replay' ? model.position : Number.POSITIVE_INFINITY;
  const showProgress = document.getElementById('show-progress').checked;
  const rows = model.rows.filter(
    (r) =>
      r.index <= upTo &&
      (showProgress || !r.progress) &&
      (model.focus === undefined || r.node === model.focus),
  );
  const last = rows.at(-1);
  body.replaceChildren();
  for (const r of rows.slice(-TIMELINE_ROWS).reverse()) {
    const tr = el('tr', {
      class: `${r.change ? 'change' : ''}${r.progress ? ' progress' : ''}${r === last && model.mode === 'replay' ? ' current' : ''}`,
    });
    const chip = el('span', { class: 'chip' }, r.node);
    chip.style.setProperty('--color', COLORS[colorIndex(r.node)]);
    const nodeCell = el('td');
    nodeCell.append(chip);
    tr.append(
      el('td', {}, time(r.at)),
      nodeCell,
      el('td', { class: 'event', title: r.raw ?? '' }, r.event),
      el('td', { title: r.afterRaw ?? '' }, r.after),
    );
    body.append(tr);
  }
}

function renderReplayControls() {
  const slider = document.getElementById('slider');
  slider.max = String(Math.max(0, model.records.length - 1));
  slider.value = String(model.position);
  const record = model.records[model.position];
  document.getElementById('position').textContent =
    record === undefined
      ? 'no records'
      : `${time(Number(record.createdAt))}  record ${model.position + 1} / ${model.records.length}`;
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
  });
}

function render() {
  const state = shown();
  const byNode = actorsByNode(state);
  const chartsEl = document.getElementById('charts');
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
  const problem = document.getElementById('problem');
  problem.textContent = model.problem ?? '';
  renderBadge();
  renderBanner(byNode);
}

// ---- the story at a glance: connection badge, "no primary" banner ---------------------------

let streamOpen = false;
/** Green only when the page's stream is open and the server reads the cluster without error. */
function renderBadge() {
  const badge = document.getElementById('connection');
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
function renderBanner(byNode) {
  const banner = document.getElementById('banner');
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
setInterval(() => {
  if (!document.getElementById('banner').hidden) scheduleRender();
}, 250);

// ---- replay controls ---------------------------------------------------------------------

/** The next (dir 1) or previous (dir -1) record that changes a root actor's state. */
function nextChange(from, dir) {
  const state = stateAt(from);
  if (dir > 0) {
    for (let i = from + 1; i < model.records.length; i++)
      if (apply(state, model.records[i], i)) return i;
    return model.records.length - 1;
  }
  // Backwards: just before the change that made the state shown, so the previous state shows.
  let change = 0;
  const walk = emptyState();
  for (let i = 0; i <= from; i++) if (apply(walk, model.records[i], i)) change = i;
  return Math.max(0, change - 1);
}

function goTo(position) {
  model.position = Math.max(0, Math.min(model.records.length - 1, position));
  render();
}

document.getElementById('slider').addEventListener('input', (e) => goTo(Number(e.target.value)));
document.getElementById('first').addEventListener('click', () => goTo(0));
document.getElementById('last').addEventListener('click', () => goTo(model.records.length - 1));
document
  .getElementById('forward')
  .addEventListener('click', () => goTo(nextChange(model.position, 1)));
document
  .getElementById('back')
  .addEventListener('click', () => goTo(nextChange(model.position, -1)));

// ---- the stream --------------------------------------------------------------------------

function reset() {
  model.records = [];
  model.live = emptyState();
  model.rows = [];
  model.rowOfRoot = new Map();
  model.position = 0;
  model.historyDone = false;
}

const stream = new EventSource('/api/stream');
stream.addEventListener('open', () => {
  streamOpen = true;
  renderBadge();
});
stream.addEventListener('error', () => {
  streamOpen = false;
  renderBadge();
});
document.getElementById('show-progress').addEventListener('change', () => render());
stream.addEventListener('message', (e) => {
  const message = JSON.parse(e.data);
  if (message.kind === 'hello') {
    reset();
    model.mode = message.mode;
    document.getElementById('title').textContent =
      message.mode === 'replay'
        ? `replay of ${(message.sources ?? []).map((f) => f.split('/').at(-1)).join(', ')}`
        : message.title;
    document.getElementById('replay').hidden = message.mode !== 'replay';
    document.body.dataset.mode = message.mode;
  } else if (message.kind === 'record') {
    const index = model.records.length;
    model.records.push(message.record);
    addRow(message.record, index);
    apply(model.live, message.record, index);
    if (model.mode === 'live' || model.historyDone) scheduleRender();
  } else if (message.kind === 'nodes') {
    model.nodeViews = new Map(message.nodes.map((n) => [n.id, n]));
    model.problem = message.problem;
    model.leaseTtlMs = message.leaseTtlMs;
    if (!model.historyDone) {
      model.historyDone = true;
      document.body.dataset.ready = 'true';
    }
    scheduleRender();
  }
});

window.understudyInspect = model;
