import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { createMachine, type AnyStateMachine, type AnyStateNode } from 'xstate';
import { masterNodeMachine } from '../../machines/masterNode.machine.ts';
import { diagramTransitions, toMermaid, toPlantUml } from '../../src/tools/diagram.ts';
import { registerMachinesCommand, renderMachines } from '../../src/cli/machinesCommand.ts';

// The expected states and transitions are read from each state node's *config* (what the
// machine author wrote: `on`, `after`, `always`, `invoke.onDone/onError`), resolving targets
// by hand - not through the generator's path (`StateNode.transitions`).

interface Expected {
  readonly source: string;
  readonly target: string;
  /** The label's event part as the diagrams must show it. */
  readonly event: string;
}

type TargetConfig = string | { readonly target?: string | readonly string[] } | undefined;

/**
 * The diagrams' state ids: the key (`standby`) when keys are unique in the machine, else the
 * path below the root (`running_standby`).
 */
function idsOf(machine: AnyStateMachine): (stateId: string) => string {
  const keys = allNodes(machine)
    .filter((n) => n !== machine.root)
    .map((n) => n.key);
  const unique = new Set(keys).size === keys.length;
  return (stateId) =>
    unique ? (stateId.split('.').at(-1) ?? '') : stateId.split('.').slice(1).join('_');
}

/** Every state node, root included, walking `states` from the root. */
function allNodes(machine: AnyStateMachine): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const visit = (node: AnyStateNode): void => {
    out.push(node);
    Object.values(node.states).forEach(visit);
  };
  visit(machine.root);
  return out;
}

function resolve(node: AnyStateNode, target: string): string {
  if (target.startsWith('#')) return target.slice(1);
  const parent = node.parent;
  if (parent === undefined) throw new Error(`no parent for ${node.id}`);
  return `${parent.id}.${target}`;
}

function targetsOf(config: unknown): string[] {
  const list = (Array.isArray(config) ? config : [config]) as TargetConfig[];
  return list.flatMap((c) => {
    if (c === undefined) return [];
    if (typeof c === 'string') return [c];
    if (c.target === undefined) return [];
    return typeof c.target === 'string' ? [c.target] : [...c.target];
  });
}

function expectedTransitions(machine: AnyStateMachine): Expected[] {
  const out: Expected[] = [];
  for (const node of allNodes(machine)) {
    const config = node.config as {
      on?: Record<string, unknown>;
      after?: Record<string, unknown>;
      always?: unknown;
      invoke?: unknown;
    };
    const add = (event: string, targets: unknown): void => {
      for (const t of targetsOf(targets)) {
        out.push({ source: node.id, target: resolve(node, t), event });
      }
    };
    for (const [event, t] of Object.entries(config.on ?? {})) add(event, t);
    for (const [delay, t] of Object.entries(config.after ?? {})) {
      add(`after(${/^\d+$/.test(delay) ? `${delay}ms` : delay})`, t);
    }
    if (config.always !== undefined) add('always', config.always);
    const invokes = (
      config.invoke === undefined
        ? []
        : Array.isArray(config.invoke)
          ? config.invoke
          : [config.invoke]
    ) as { id: string; onDone?: unknown; onError?: unknown }[];
    for (const invoke of invokes) {
      add(`onDone(${invoke.id})`, invoke.onDone);
      add(`onError(${invoke.id})`, invoke.onError);
    }
  }
  return out;
}

function edgeLines(text: string): string[] {
  return text.split('\n').filter((l) => / --> /.test(l) && !l.includes('[*]'));
}

/** Every state is declared, each compound one with its initial state, each final one ends. */
function checkStates(machine: AnyStateMachine, text: string): void {
  const idOf = idsOf(machine);
  const lines = text.split('\n').map((l) => l.trim());
  const states = allNodes(machine).filter((n) => n !== machine.root);
  for (const node of states) {
    const id = idOf(node.id);
    const declarations = [id, `state ${id}`, `state ${id} {`, `state "${node.key}" as ${id}`];
    declarations.push(`state "${node.key}" as ${id} {`);
    expect(
      lines.some((l) => declarations.includes(l)),
      `state ${node.id} declared in\n${text}`,
    ).toBe(true);
    if (node.type === 'compound') {
      const initial = (node.config as { initial?: string }).initial;
      expect(initial).toBeDefined();
      expect(text).toContain(`[*] --> ${idOf(`${node.id}.${initial}`)}`);
    }
    if (node.type === 'final') expect(text).toContain(`${idOf(node.id)} --> [*]`);
  }
  const rootInitial = (machine.root.config as { initial?: string }).initial;
  expect(text).toContain(`[*] --> ${idOf(`${machine.root.id}.${rootInitial}`)}`);
}

/** PlantUML: one edge per transition, between the very states it joins. */
function checkDiagram(machine: AnyStateMachine, text: string): void {
  checkStates(machine, text);
  const idOf = idsOf(machine);
  const expected = expectedTransitions(machine);
  const edges = edgeLines(text).map((l) => l.trim());
  const unmatched = [...edges];
  for (const t of expected) {
    const prefix = `${idOf(t.source)} --> ${idOf(t.target)} : ${t.event}`;
    const i = unmatched.findIndex((l) => l === prefix || l.startsWith(`${prefix} [`));
    expect(i, `edge ${t.source} -(${t.event})-> ${t.target} in\n${text}`).toBeGreaterThanOrEqual(0);
    unmatched.splice(i, 1);
  }
  // Nothing drawn that the machine does not have.
  expect(unmatched).toEqual([]);
}

/** One transition as read back from a Mermaid edge line. */
interface DrawnTransition {
  readonly source: string;
  readonly target: string;
  /** `event` or `event [guard]`. */
  readonly label: string;
  /** The inner state left or entered, when the edge was lifted; `''` when not. */
  readonly from: string;
  readonly to: string;
}

/**
 * Reads every transition back from the Mermaid edges (`a --> b : e1, e2 (from x, y)<br/>e3`):
 * one per event and inner state named.
 */
function drawnMermaidTransitions(text: string): DrawnTransition[] {
  return edgeLines(text).flatMap((line) => {
    const match = /^\s*(\w+) --> (\w+) : (.*)$/.exec(line);
    if (match === null) throw new Error(`not an edge: ${line}`);
    const [, source = '', target = '', label = ''] = match;
    return label.split('<br/>').flatMap((part) => {
      const ends = / \(((?:from|to) [^)]*)\)$/.exec(part);
      const events = ends === null ? part : part.slice(0, ends.index);
      const lists = (ends?.[1] ?? '').split('; ');
      const names = (kind: string): string[] =>
        lists
          .find((l) => l.startsWith(`${kind} `))
          ?.slice(kind.length + 1)
          .split(', ') ?? [''];
      return events
        .split(', ')
        .flatMap((e) =>
          names('from').flatMap((from) =>
            names('to').map((to) => ({ source, target, label: e, from, to })),
          ),
        );
    });
  });
}

/** The ancestor-or-self of `id` that is a child of `parent`. */
function liftTo(parent: string, id: string): string {
  return id
    .split('.')
    .slice(0, parent.split('.').length + 1)
    .join('.');
}

/**
 * Mermaid: every transition is drawn between the children of the innermost state holding both
 * ends, naming the inner states it leaves or enters when they are deeper.
 */
function checkMermaid(machine: AnyStateMachine, text: string): void {
  checkStates(machine, text);
  const idOf = idsOf(machine);
  const unmatched = drawnMermaidTransitions(text);
  for (const t of expectedTransitions(machine)) {
    const a = t.source.split('.');
    const b = t.target.split('.');
    let n = 0;
    while (n < a.length - 1 && n < b.length - 1 && a[n] === b[n]) n++;
    const parent = a.slice(0, n).join('.');
    const source = liftTo(parent, t.source);
    const target = liftTo(parent, t.target);
    const inner = (lifted: string, id: string): string =>
      lifted === id ? '' : (id.split('.').at(-1) ?? id);
    const i = unmatched.findIndex(
      (d) =>
        d.source === idOf(source) &&
        d.target === idOf(target) &&
        (d.label === t.event || d.label.startsWith(`${t.event} [`)) &&
        d.from === inner(source, t.source) &&
        d.to === inner(target, t.target),
    );
    expect(i, `edge ${t.source} -(${t.event})-> ${t.target} in\n${text}`).toBeGreaterThanOrEqual(0);
    unmatched.splice(i, 1);
  }
  // Nothing drawn that the machine does not have.
  expect(unmatched).toEqual([]);
}

describe('state-machine diagrams', () => {
  it('the master node machine: every state and transition is in the Mermaid diagram', () => {
    const text = toMermaid(masterNodeMachine);
    expect(text.startsWith('stateDiagram-v2\n')).toBe(true);
    checkMermaid(masterNodeMachine, text);
    // Composite states are blocks.
    expect(text).toContain('\n  state running {\n');
    expect(text).toContain('\n    state standby {\n');
    // Mermaid cannot label a composite state.
    expect(text).not.toMatch(/state "[^"]*" as \w+ \{/);
  });

  it('the master node machine: every state and transition is in the PlantUML diagram', () => {
    const text = toPlantUml(masterNodeMachine);
    expect(text.startsWith('@startuml\n')).toBe(true);
    expect(text.trimEnd().endsWith('@enduml')).toBe(true);
    checkDiagram(masterNodeMachine, text);
    expect(text).toContain('\n  state candidate {\n');
    expect(text).toContain('primary : invoke serve');
  });

  it('names guards: by name, inline ones by their function name, else by their expression', () => {
    const text = toPlantUml(masterNodeMachine);
    expect(text).toContain('primary --> fenced : leader.changed [leaderNotSelf]');
    expect(text).toContain('following --> awaitingCampaign : always [mayCampaign]');
    expect(text).toContain('campaigning --> promoting : onDone(campaign) [campaignWon]');
    expect(text).toContain('handingOver --> standby : onDone(handOver) [switchingOver]');
    // No guard of the node machine is shown as code.
    for (const t of diagramTransitions(masterNodeMachine)) {
      expect(t.label).not.toMatch(/context\.|event\.|[=!]==?/);
    }
    const toy = createMachine({
      id: 'toy',
      types: { context: {} as { ready: boolean } },
      context: { ready: true },
      initial: 'a',
      states: {
        a: {
          on: {
            go: { target: 'b', guard: ({ context }) => context.ready },
            long: {
              target: 'b',
              guard: ({ event }) => typeof event === 'object' && event.type.length > 100,
            },
          },
        },
        b: {},
      },
    });
    expect(diagramTransitions(toy).map((t) => t.label)).toEqual([
      'go [context.ready]',
      'long [guarded]',
    ]);
  });

  it('Mermaid: invoking states keep their name; transitions out of composite states are lifted', () => {
    const text = toMermaid(masterNodeMachine);
    expect(text).toContain('    state "primary" as primary\n    primary : invoke serve\n');
    expect(text).toContain(
      '    standby --> candidate : after(campaignDelay) (from awaitingCampaign)\n',
    );
    expect(text).toContain(
      '  running --> stopping : node.stop (from standby, syncing, syncFailed, candidate, fenced)',
    );
    // Edges are declared only where both ends are: no inner state is named outside its parent.
    expect(text).not.toMatch(/^ {4}\w+ --> (following|awaitingCampaign|campaigning|promoting)/m);
  });

  it('draws any machine: numeric delays, parallel regions, final states', () => {
    const machine = createMachine({
      id: 'toy',
      initial: 'idle',
      states: {
        idle: { on: { go: 'busy', quit: 'done' } },
        busy: {
          type: 'parallel',
          states: {
            a: { initial: 'a1', states: { a1: { after: { 250: 'a2' } }, a2: {} } },
            b: { initial: 'b1', states: { b1: { on: { flip: { target: '#toy.idle' } } } } },
          },
        },
        done: { type: 'final' },
      },
    });
    checkMermaid(machine, toMermaid(machine));
    checkDiagram(machine, toPlantUml(machine));
    expect(toMermaid(machine)).toContain('a1 --> a2 : after(250ms)');
  });

  it('falls back to path ids when state keys repeat', () => {
    const machine = createMachine({
      id: 'twins',
      initial: 'left',
      states: {
        left: { initial: 'idle', states: { idle: { on: { go: '#twins.right.idle' } } } },
        right: { initial: 'idle', states: { idle: { on: { back: '#twins.left' } } } },
      },
    });
    checkMermaid(machine, toMermaid(machine));
    checkDiagram(machine, toPlantUml(machine));
    // Mermaid draws a transition between inner states of two composite states between them.
    expect(toMermaid(machine)).toContain('left --> right : go (from idle; to idle)');
    expect(toPlantUml(machine)).toContain('left_idle --> right_idle : go');
    expect(toMermaid(machine)).toContain('state "idle" as left_idle');
  });

  it('`understudy machines` renders each format and refuses an unknown one', async () => {
    expect(renderMachines('mermaid')).toBe(toMermaid(masterNodeMachine));
    expect(renderMachines('plantuml', ['masterNode'])).toBe(toPlantUml(masterNodeMachine));
    expect(renderMachines('markdown')).toContain('```mermaid\nstateDiagram-v2');
    expect(() => renderMachines('mermaid', ['nope'])).toThrow(/unknown machine 'nope'/);

    const program = new Command('understudy').exitOverride();
    program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerMachinesCommand(program);
    const machines = program.commands.find((c) => c.name() === 'machines');
    machines?.exitOverride();
    await expect(
      program.parseAsync(['machines', '--format', 'svg'], { from: 'user' }),
    ).rejects.toThrow(/svg/);
  });
});
