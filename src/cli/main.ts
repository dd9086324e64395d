// The `understudy` command. Each subcommand's module (and what it pulls in: NATS, etcd, the
// machine) is imported only when that subcommand runs, so `understudy --help` starts fast.
import { Command } from 'commander';
import { packageVersion } from '../process/packageInfo.ts';

type Register = (program: Command) => void;

/** Every subcommand: its name, the line `understudy --help` shows, and how to load it. */
const SUBCOMMANDS: ReadonlyArray<{
  readonly name: string;
  readonly summary: string;
  readonly load: () => Promise<Register>;
}> = [
  {
    name: 'node',
    summary: 'run a master node (primary or standby, decided by election)',
    load: async () => (await import('./nodeCommand.ts')).registerNodeCommand,
  },
  {
    name: 'status',
    summary: "show every node's state, epoch, applied seq, lag and last verification",
    load: async () => (await import('./statusCommand.ts')).registerStatusCommand,
  },
  {
    name: 'switchover',
    summary: 'move the primary role to a standby (planned, no lease wait)',
    load: async () => (await import('./switchoverCommand.ts')).registerSwitchoverCommand,
  },
  {
    name: 'export',
    summary: 'write the OpLog (or a seq range) as NDJSON',
    load: async () => (await import('./exportCommand.ts')).registerExportCommand,
  },
  {
    name: 'replay',
    summary: 'fold the OpLog: the state at a seq, or the history of a key',
    load: async () => (await import('./replayCommand.ts')).registerReplayCommand,
  },
  {
    name: 'checkpoint',
    summary: "list, verify or create the cluster's checkpoints",
    load: async () => (await import('./checkpointCommand.ts')).registerCheckpointCommand,
  },
  {
    name: 'machines',
    summary: 'print the state machines as diagrams (Mermaid, PlantUML)',
    load: async () => (await import('./machinesCommand.ts')).registerMachinesCommand,
  },
  {
    name: 'inspect',
    summary: "serve a local page with every node's machine live, or replay --record files",
    load: async () => (await import('./inspectCommand.ts')).registerInspectCommand,
  },
  {
    name: 'demo',
    summary: 'run a local cluster, kill its primary under load, print the failover timeline',
    load: async () => (await import('./demo.ts')).registerDemoCommand,
  },
];

/** The subcommand `args` (without node and the script) run: `help X` counts as X. */
function chosenSubcommand(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  const first = words[0] === 'help' ? words[1] : words[0];
  return SUBCOMMANDS.some((c) => c.name === first) ? first : undefined;
}

/** The program for `args`: the chosen subcommand fully defined, the others by name and summary. */
async function buildProgram(args: readonly string[]): Promise<Command> {
  const program = new Command('understudy')
    .description('Hot-standby HA metadata master over NATS JetStream and etcd')
    .version(packageVersion(), '-V, --version', 'print the version')
    // A usage error is one line and where to look, not the whole help (subcommands inherit it).
    .configureOutput({
      outputError: (text, write) =>
        write(`${text.trim().replace(/\s*\n\s*/g, ' ')} (see --help)\n`),
    })
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .addHelpText(
      'after',
      `
Examples:
  npm run demo                                   (in a clone: a local cluster and a failover)
  understudy node --id n1 --cluster main --nats nats://127.0.0.1:4222 --etcd http://127.0.0.1:2379
  understudy status --cluster main --etcd http://127.0.0.1:2379
  understudy help node                           (every setting, its default and variable)

Every setting is a flag, an environment variable UNDERSTUDY_<NAME> or a key of a JSON
config file (--config). Docs: docs/README.md in the package.`,
    );
  const chosen = chosenSubcommand(args);
  for (const subcommand of SUBCOMMANDS) {
    if (subcommand.name === chosen) {
      (await subcommand.load())(program);
    } else {
      program.command(subcommand.name).summary(subcommand.summary);
    }
  }
  return program;
}

await (await buildProgram(process.argv.slice(2))).parseAsync(process.argv);
