import { writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { AnyStateMachine } from 'xstate';
import { masterNodeMachine } from '../../machines/masterNode.machine.ts';
import { toMermaid, toPlantUml } from '../tools/diagram.ts';

/** The state machines `understudy machines` draws, by name. */
export const diagramMachines: Readonly<Record<string, AnyStateMachine>> = {
  masterNode: masterNodeMachine,
};

/** The diagram formats `understudy machines --format` accepts. */
export const DIAGRAM_FORMATS = ['mermaid', 'plantuml', 'markdown'] as const;
export type DiagramFormat = (typeof DIAGRAM_FORMATS)[number];

/**
 * The diagrams of the named machines (all of them by default) in one format. `markdown` is
 * Mermaid inside fenced `mermaid` blocks under a heading per machine, ready for a README.
 * Throws a RangeError naming the known machines for an unknown name.
 */
export function renderMachines(format: DiagramFormat, names?: readonly string[]): string {
  const chosen = names !== undefined && names.length > 0 ? names : Object.keys(diagramMachines);
  const parts = chosen.map((name) => {
    const machine = diagramMachines[name];
    if (machine === undefined) {
      throw new RangeError(
        `unknown machine '${name}' (known: ${Object.keys(diagramMachines).join(', ')})`,
      );
    }
    if (format === 'plantuml') return toPlantUml(machine);
    if (format === 'mermaid') return toMermaid(machine);
    return `### ${name}\n\n\`\`\`mermaid\n${toMermaid(machine)}\`\`\`\n`;
  });
  return parts.join('\n');
}

/**
 * `understudy machines`: prints the node's state machines as diagrams generated from the
 * machine definitions (exit 0; 2 for a bad flag or an unknown machine).
 */
export function registerMachinesCommand(program: Command): void {
  program
    .command('machines')
    .description('print the state machines as diagrams generated from their definitions')
    .addOption(
      new Option('--format <format>', 'diagram format').choices(DIAGRAM_FORMATS).default('mermaid'),
    )
    .option(
      '--machine <name...>',
      `machines to draw (default: all: ${Object.keys(diagramMachines).join(', ')})`,
    )
    .option('--out <file>', 'write to a file instead of stdout')
    .addHelpText(
      'after',
      `
Examples:
  understudy machines                              (every machine, Mermaid stateDiagram-v2)
  understudy machines --format plantuml --out machines.puml
  understudy machines --machine masterNode --format mermaid`,
    )
    .action(async (flags: { format: DiagramFormat; machine?: string[]; out?: string }) => {
      let text: string;
      try {
        text = renderMachines(flags.format, flags.machine);
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        process.stderr.write(`understudy machines: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (flags.out === undefined) process.stdout.write(text);
      else await writeFile(flags.out, text);
    });
}
