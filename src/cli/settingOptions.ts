// The flags of a command's settings, generated from their definitions (src/config/settings.ts),
// so `--help` shows every setting with its default and environment variable.
import { InvalidArgumentError, type Command } from 'commander';
import { natsSourceSettings } from '../config/config.ts';
import { envName, flagName, settingHelp, type SettingTable } from '../config/settings.ts';

/**
 * Adds `--config <file>` and one flag per setting of `table` to `command`; secrets get no
 * flag, and the help text lists their variables instead.
 */
export function addSettingOptions(command: Command, table: SettingTable): Command {
  command.option(
    '--config <file>',
    'JSON config file: any setting of `understudy node` by name, e.g. {"leaseTtl": "5s"} (env UNDERSTUDY_CONFIG)',
  );
  const secrets: string[] = [];
  for (const [key, setting] of Object.entries(table)) {
    if (setting.secret) {
      secrets.push(`${envName(key)} (${setting.help})`);
      continue;
    }
    command.option(`${flagName(key)} ${setting.type.placeholder}`, settingHelp(key, setting));
  }
  if (secrets.length > 0) {
    command.addHelpText(
      'after',
      `\nSecrets have no flag (flags show in ps): set them in the environment, in the config file\nor through the *-file flags:\n  ${secrets.join('\n  ')}`,
    );
  }
  command.addHelpText(
    'after',
    '\nFlags win over environment variables, which win over the config file. Durations take a\nunit: 500ms, 5s, 2m, 24h.',
  );
  return command;
}

/** A seq flag's parser: an integer >= 1, else commander reports the flag (exit 2). */
export function parseSeqFlag(value: string): number {
  const seq = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(seq) || seq < 1) {
    throw new InvalidArgumentError('a seq is an integer >= 1');
  }
  return seq;
}

/**
 * Adds `--config`, `--cluster`, `--nats` and the NATS credential/TLS flags of `understudy node`
 * (each with the same environment variable) to a command that reads the live stream.
 */
export function addNatsSourceOptions(command: Command): Command {
  return addSettingOptions(command, natsSourceSettings);
}
