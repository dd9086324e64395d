/**
 * Settings of the `understudy` commands: each has a name (`leaseTtl`), a flag (`--lease-ttl`),
 * an environment variable (`UNDERSTUDY_LEASE_TTL`) and a key of the JSON config file
 * (`"leaseTtl"`), a type that parses and checks its value, and a default. Flags win over the
 * environment, which wins over the file. A secret (a password, a token) has no flag: flags are
 * visible in `ps`.
 *
 * Every problem names the setting by its flag and variable, says where the bad value came
 * from, and never shows a secret's value. This module imports no schema library, so the
 * command's `--help` (built from these definitions) starts fast.
 */
import { text } from './settingTypes.ts';
import type { ConfigFile } from './configFile.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** A raw value cannot be a setting's value; the message says why (without naming the setting). */
export class SettingValueError extends UnderstudyError {
  override readonly name = 'SettingValueError';
  readonly code = 'SETTING_VALUE';
}

/** How a setting's raw value (flag or variable text, or a JSON value of the file) is read. */
export interface SettingType<T> {
  /** The flag's value placeholder in `--help`: `<duration>`, `<urls>`. */
  readonly placeholder: string;
  /** Throws {@link SettingValueError}. */
  parse(raw: unknown): T;
  /** A value as `--help` shows it (defaults). */
  show(value: T): string;
}

/** Whether a setting must be set, has a default, or may stay unset. */
export type Presence = 'required' | 'default' | 'optional';

export interface Setting<T, P extends Presence = Presence> {
  readonly type: SettingType<T>;
  /** One line for `--help`. */
  readonly help: string;
  readonly presence: P;
  readonly default?: T;
  /** Set from the environment or the config file only, and never shown. */
  readonly secret: boolean;
}

// A definition table is a record of settings of any value type: the loader only parses them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SettingTable = Readonly<Record<string, Setting<any>>>;

/** A setting that must be set. */
export function required<T>(type: SettingType<T>, help: string): Setting<T, 'required'> {
  return { type, help, presence: 'required', secret: false };
}

/** A setting with a default. */
export function withDefault<T>(
  type: SettingType<T>,
  value: T,
  help: string,
): Setting<T, 'default'> {
  return { type, help, presence: 'default', default: value, secret: false };
}

/** A setting that may stay unset. */
export function optional<T>(type: SettingType<T>, help: string): Setting<T, 'optional'> {
  return { type, help, presence: 'optional', secret: false };
}

/** A secret: no flag, never shown; optional. */
export function secret(help: string): Setting<string, 'optional'> {
  return { type: text, help, presence: 'optional', secret: true };
}

type ValueOf<S> = S extends Setting<infer T> ? T : never;
type KeysWith<S extends SettingTable, P extends Presence> = {
  [K in keyof S]: S[K] extends Setting<unknown, P> ? K : never;
}[keyof S];

/** The values of a table: required and defaulted settings always present, the others optional. */
export type SettingsOf<S extends SettingTable> = {
  -readonly [K in KeysWith<S, 'required' | 'default'>]: ValueOf<S[K]>;
} & { -readonly [K in KeysWith<S, 'optional'>]?: ValueOf<S[K]> };

/** The environment variable of a setting: `UNDERSTUDY_` + the name in SCREAMING_SNAKE. */
export function envName(key: string): string {
  return `UNDERSTUDY_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** The flag of a setting: `--` + the name in kebab-case. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** How messages name a setting: `--lease-ttl (UNDERSTUDY_LEASE_TTL)`; a secret by its variable. */
export function settingLabel(key: string, setting: Setting<unknown> | undefined): string {
  return setting?.secret === true
    ? `${envName(key)} ("${key}" in the config file)`
    : `${flagName(key)} (${envName(key)})`;
}

/** Settings are wrong: every problem, each naming its flag and variable. Exit code 2. */
export class ConfigError extends UnderstudyError {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG';
  constructor(readonly problems: readonly string[]) {
    super(
      problems.length === 1
        ? `bad configuration: ${problems[0]}`
        : `bad configuration:\n  ${problems.join('\n  ')}`,
    );
  }
}

/** Where the settings come from. */
export interface SettingSources {
  /** Parsed flags by setting name (commander's camelCase options); undefined = not given. */
  readonly flags?: Readonly<Record<string, unknown>>;
  readonly env?: NodeJS.ProcessEnv;
  readonly file?: ConfigFile;
}

/**
 * The values of `table` from `sources` (flags over the environment over the file over the
 * defaults). Throws {@link ConfigError} with one problem per bad or missing setting.
 */
export function loadSettings<S extends SettingTable>(
  table: S,
  sources: SettingSources,
): SettingsOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, setting] of Object.entries(table)) {
    const flag = setting.secret ? undefined : sources.flags?.[key];
    const env = sources.env?.[envName(key)];
    const fromFile = sources.file?.values[key];
    const [raw, origin] =
      flag !== undefined
        ? [flag, `the flag ${flagName(key)}`]
        : env !== undefined && env !== ''
          ? [env, envName(key)]
          : fromFile !== undefined
            ? [fromFile, `"${key}" in ${sources.file?.path ?? 'the config file'}`]
            : [undefined, ''];
    if (raw === undefined) {
      if (setting.presence === 'default') out[key] = setting.default;
      else if (setting.presence === 'required') {
        problems.push(`${settingLabel(key, setting)} is required (or "${key}" in a config file)`);
      }
      continue;
    }
    try {
      out[key] = setting.type.parse(raw);
    } catch (err) {
      if (!(err instanceof SettingValueError)) throw err;
      problems.push(
        setting.secret
          ? `${settingLabel(key, setting)}: the value from ${origin} is not valid`
          : `${settingLabel(key, setting)}: ${err.message} (from ${origin})`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as SettingsOf<S>;
}

/**
 * Rewrites the setting names in a cross-field problem (`set natsPassword or natsPasswordFile,
 * not both`) to their labels, so it names flags and variables too.
 */
export function labelProblem(problem: string, table: SettingTable): string {
  return problem.replace(/\b[a-z]+[A-Z][A-Za-z]*\b/g, (word) =>
    Object.hasOwn(table, word) ? settingLabel(word, table[word]) : word,
  );
}

/** A setting's default as people write it (`5s`), or undefined when it has none. */
export function defaultText(setting: Setting<unknown>): string | undefined {
  return setting.presence === 'default' && setting.default !== undefined
    ? setting.type.show(setting.default)
    : undefined;
}

/** The `--help` line of a setting: what it is, its default, its variable. */
export function settingHelp(key: string, setting: Setting<unknown>): string {
  const parts = [setting.help];
  if (setting.presence === 'required') parts.push('required');
  const shownDefault = defaultText(setting);
  if (shownDefault !== undefined) parts.push(`default ${shownDefault}`);
  parts.push(`env ${envName(key)}`);
  return `${parts[0]} (${parts.slice(1).join('; ')})`;
}
