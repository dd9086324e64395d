import type { Command } from 'commander';
import { loadNodeConfig, nodeSettings } from '../config/config.ts';
import { ConfigError, settingLabel } from '../config/settings.ts';
import { addSettingOptions } from './settingOptions.ts';

/** Exit codes of `understudy node`. */
export const NODE_EXIT = {
  /** Stopped by SIGTERM/SIGINT (a primary handed over first). */
  ok: 0,
  /** It could not start, or stopping failed. */
  failed: 1,
  /**
   * Bad flags, environment or config file (or settings NATS JetStream refused), another live
   * node runs with this `--id`, its OpLog key is not the cluster's, or its `--groups` is not
   * the cluster's group count.
   */
  usage: 2,
} as const;

const EXAMPLES = `
Examples:
  understudy node --id n1 --cluster main --nats nats://10.0.0.1:4222 --etcd http://10.0.0.1:2379 \\
    --lease-ttl 5s --http 0.0.0.0:9100 --advertise http://10.0.0.11:9100
  UNDERSTUDY_NATS_PASSWORD=... understudy node --config /etc/understudy/n1.json --nats-user master
  understudy node --id n1 --cluster main --print-config > n1.json   (the settings it would run
    with, as a config file: durations with their unit, secrets left out)
  understudy node --config n1.json

Exit codes: 0 stopped by SIGTERM/SIGINT (a primary hands over first); 1 could not start;
2 bad flags, environment or config file (or NATS JetStream refused the stream settings),
another live node runs with this --id, or its OpLog key (--oplog-key-file) is not the
cluster's (the key ids differ), or its --groups is not the count the cluster was created
with.`;

function fail(code: number, message: string): void {
  process.stderr.write(`understudy node: ${message}\n`);
  process.exitCode = code;
}

/**
 * `understudy node`: runs one master node until SIGTERM/SIGINT (then hands over and exits 0);
 * exits 2 when another live process is registered with its `--id`.
 */
export function registerNodeCommand(program: Command): void {
  const command = program
    .command('node')
    .description(
      'run a master node: it follows the OpLog as a standby and becomes primary when elected',
    )
    .option('--print-config', 'print the settings as a --config file (secrets left out) and exit');
  addSettingOptions(command, nodeSettings)
    .addHelpText('after', EXAMPLES)
    .action(async (flags: Record<string, unknown>) => {
      let config;
      try {
        config = loadNodeConfig(flags);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        return fail(NODE_EXIT.usage, err.message);
      }
      const [
        { pino },
        { startNode },
        { CredentialsFileError },
        { OplogKeyMismatchError },
        { GroupCountMismatchError },
      ] = await Promise.all([
        import('pino'),
        import('../process/nodeProcess.ts'),
        import('../config/credentials.ts'),
        import('../node/oplogKeyCheck.ts'),
        import('../node/groupCountCheck.ts'),
      ]);
      if (flags['printConfig'] === true) {
        const { configFileOf } = await import('../config/printConfig.ts');
        const printed = configFileOf(nodeSettings, config);
        process.stdout.write(`${JSON.stringify(printed.file, null, 2)}\n`);
        if (printed.omitted.length > 0) {
          process.stderr.write(
            `understudy node: left out (secrets: give them by environment or file): ${printed.omitted.join(', ')}\n`,
          );
        }
        return;
      }
      const { logDestination } = await import('./prettyLog.ts');
      const destination = logDestination();
      const logger =
        destination === undefined
          ? pino({ level: config.logLevel })
          : pino({ level: config.logLevel }, destination);
      // A fault nobody handled still ends the process (exit 1), but says so in the node's log
      // first, where an operator (and a test) reads why the node went.
      const crash = (err: unknown): void => {
        logger.fatal(
          { event: 'crashed', err: err instanceof Error ? err.stack : String(err) },
          'crashed',
        );
        process.exit(NODE_EXIT.failed);
      };
      process.once('uncaughtException', crash);
      process.once('unhandledRejection', crash);
      let node;
      try {
        node = await startNode(config, logger);
      } catch (err) {
        if (err instanceof CredentialsFileError) {
          const label = settingLabel(
            err.field,
            nodeSettings[err.field as keyof typeof nodeSettings],
          );
          fail(NODE_EXIT.usage, `${label}: cannot read ${err.path}`);
        } else if (err instanceof OplogKeyMismatchError) {
          // Another key than the cluster's: the node would pass over every message the primary
          // writes. A setting to fix, so exit 2, with both key ids (never a key).
          logger.error(
            {
              event: 'oplogKeyMismatch',
              cluster: err.cluster,
              keyId: err.nodeKeyId,
              clusterKeyId: err.clusterKeyId,
              at: err.recordedAt,
            },
            err.message,
          );
          fail(NODE_EXIT.usage, err.message);
        } else if (err instanceof GroupCountMismatchError) {
          // Another group count than the cluster's: it would own other shard ranges than its
          // peers. A setting to fix, so exit 2, with both counts and where the record is.
          logger.error(
            {
              event: 'groupsMismatch',
              cluster: err.cluster,
              groups: err.nodeGroups,
              clusterGroups: err.clusterGroups,
              at: err.recordedAt,
            },
            err.message,
          );
          fail(NODE_EXIT.usage, err.message);
        } else if (err instanceof ConfigError) {
          // Settings only the servers could judge (NATS JetStream refused the stream's).
          logger.error({ event: 'startFailed', err: err.message }, err.message);
          fail(NODE_EXIT.usage, err.message);
        } else {
          logger.error({ event: 'startFailed', err: String(err) }, 'the node could not start');
          fail(
            NODE_EXIT.failed,
            `could not start: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        // Whatever it had opened (a NATS connection) must not keep the process alive.
        process.exit();
      }
      // Another live process runs with this id (say where), or the node's OpLog key is no longer
      // the cluster's (a runtime said so; any group's member): exit 2, a setting to fix.
      node.onRefused((refusal) => {
        void (async () => {
          if (!(refusal instanceof OplogKeyMismatchError)) {
            logger.error({ event: 'refused', err: refusal.message }, refusal.message);
          }
          await node.stop().catch(() => undefined);
          fail(NODE_EXIT.usage, refusal.message);
          process.exit();
        })();
      });
      const onSignal = (signal: string): void => {
        logger.info({ event: 'signal', signal }, 'stopping');
        node.stop().then(
          () => process.exit(NODE_EXIT.ok),
          (err: unknown) => {
            logger.error({ err: String(err) }, 'stop failed');
            process.exit(NODE_EXIT.failed);
          },
        );
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
}
