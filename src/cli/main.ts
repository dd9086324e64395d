import { Command } from 'commander';
import { registerDemoCommand } from './demo.ts';
import { registerMachinesCommand } from './machinesCommand.ts';
import { registerNodeCommand } from './nodeCommand.ts';

const program = new Command('understudy')
  .description('Hot-standby HA metadata master over NATS JetStream and etcd')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

registerNodeCommand(program);
registerDemoCommand(program);
registerMachinesCommand(program);

await program.parseAsync(process.argv);
