import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { createMachine, type AnyStateMachine, type AnyStateNode } from 'xstate';
import { masterNodeMachine } from '../../machines/masterNode.machine.ts';
import { toMermaid, toPlantUml } from '../../src/cli/diagram.ts';
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

function checkDiagram(machine: AnyStateMachine, text: string): void {
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

describe('state-machine diagrams', () => {
  it('the master node machine: every state and transition is in the Mermaid diagram', () => {
    const text = toMermaid(masterNodeMachine);
    expect(text.startsWith('stateDiagram-v2\n')).toBe(true);
    checkDiagram(masterNodeMachine, text);
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

  it('names guards: by name, and inline ones by their expression', () => {
    const text = toMermaid(masterNodeMachine);
    expect(text).toContain('primary --> fenced : leader.changed [leaderNotSelf]');
    expect(text).toContain('following --> awaitingCampaign : always [mayCampaign]');
    expect(text).toContain('campaigning --> promoting : onDone(campaign) [event.output.won]');
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
    for (const text of [toMermaid(machine), toPlantUml(machine)]) checkDiagram(machine, text);
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
    for (const text of [toMermaid(machine), toPlantUml(machine)]) checkDiagram(machine, text);
    expect(toMermaid(machine)).toContain('left_idle --> right_idle : go');
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
