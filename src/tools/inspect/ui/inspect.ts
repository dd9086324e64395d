// The inspect page: one state chart per machine, every node's active state highlighted in the
// node's colour, a card per node (epoch, applied seq, lag, last verification), the timeline.
// Live, it follows /api/stream; replaying, the same records arrive at once and a slider and
// step buttons choose the moment shown. No library, no network beyond this page's server.
//
// Written in TypeScript (type-checked by `npm run check` with ui/tsconfig.json); the browser
// loads it as ES modules: compiled by the build into dist/, or by the server from the source.
import type { PageMessage } from '../inspectHub.ts';
import { addRow, apply, model, nextChange, reset } from './model.ts';
import { byId, render, scheduleRender, setStreamOpen } from './view.ts';

declare global {
  interface Window {
    /** The page's model, for a person debugging the page in the browser's console. */
    understudyInspect: typeof model;
  }
}

// The countdown in the "no primary" banner moves on while no record arrives.
setInterval(() => {
  if (!byId('banner').hidden) scheduleRender();
}, 250);

// ---- replay controls ---------------------------------------------------------------------

function goTo(position: number): void {
  model.position = Math.max(0, Math.min(model.records.length - 1, position));
  render();
}

const slider = byId<HTMLInputElement>('slider');
slider.addEventListener('input', () => goTo(Number(slider.value)));
byId('first').addEventListener('click', () => goTo(0));
byId('last').addEventListener('click', () => goTo(model.records.length - 1));
byId('forward').addEventListener('click', () => goTo(nextChange(model.position, 1)));
byId('back').addEventListener('click', () => goTo(nextChange(model.position, -1)));
byId('show-progress').addEventListener('change', () => render());

// ---- the stream --------------------------------------------------------------------------

function receive(message: PageMessage): void {
  if (message.kind === 'hello') {
    reset();
    model.mode = message.mode;
    byId('title').textContent =
      message.mode === 'replay'
        ? `replay of ${(message.sources ?? []).map((f) => f.split('/').at(-1)).join(', ')}`
        : message.title;
    byId('replay').hidden = message.mode !== 'replay';
    document.body.dataset['mode'] = message.mode;
  } else if (message.kind === 'record') {
    const index = model.records.length;
    model.records.push(message.record);
    addRow(message.record, index);
    apply(model.live, message.record, index);
    if (model.mode === 'live' || model.historyDone) scheduleRender();
  } else {
    model.nodeViews = new Map(message.nodes.map((n) => [n.id, n]));
    model.problem = message.problem;
    model.leaseTtlMs = message.leaseTtlMs;
    if (!model.historyDone) {
      model.historyDone = true;
      document.body.dataset['ready'] = 'true';
    }
    scheduleRender();
  }
}

const stream = new EventSource('/api/stream');
stream.addEventListener('open', () => setStreamOpen(true));
stream.addEventListener('error', () => setStreamOpen(false));
stream.addEventListener('message', (e: MessageEvent<string>) =>
  receive(JSON.parse(e.data) as PageMessage),
);

window.understudyInspect = model;
