import { Command } from 'commander';
import { registerCheckpointCommand } from './checkpointCommand.ts';
import { registerDemoCommand } from './demo.ts';
import { registerExportCommand } from './exportCommand.ts';
import { registerMachinesCommand } from './machinesCommand.ts';
import { registerNodeCommand } from './nodeCommand.ts';
import { registerReplayCommand } from './replayCommand.ts';
import { registerStatusCommand } from './statusCommand.ts';
import { registerSwitchoverCommand } from './switchoverCommand.ts';

const program = new Command('understudy')
  .description('Hot-standby HA metadata master over NATS JetStream and etcd')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

registerNodeCommand(program);
registerDemoCommand(program);
registerMachinesCommand(program);
registerExportCommand(program);
registerReplayCommand(program);
registerStatusCommand(program);
registerSwitchoverCommand(program);
registerCheckpointCommand(program);

await program.parseAsync(process.argv);
