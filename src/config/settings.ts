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
import { readFileSync } from 'node:fs';
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

// ---------------------------------------------------------------------------------------------
// Types

const shown = (raw: unknown): string => {
  const text = typeof raw === 'string' ? JSON.stringify(raw) : (JSON.stringify(raw) ?? String(raw));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/** A non-empty string. */
export const text: SettingType<string> = {
  placeholder: '<text>',
  parse(raw) {
    if (typeof raw !== 'string' || raw === '')
      throw new SettingValueError('must be a non-empty string');
    return raw;
  },
  show: (value) => value,
};

/** A file path (a non-empty string). */
export const filePath: SettingType<string> = { ...text, placeholder: '<file>' };

/** A string matching `pattern`, described by `what` in messages. */
export function matching(
  pattern: RegExp,
  what: string,
  placeholder = '<text>',
): SettingType<string> {
  return {
    placeholder,
    parse(raw) {
      if (typeof raw !== 'string' || !pattern.test(raw)) {
        throw new SettingValueError(`${shown(raw)} is not ${what}`);
      }
      return raw;
    },
    show: (value) => value,
  };
}

/** A list: a comma-separated string, or a JSON array of strings in the config file. */
export function list(placeholder: string, item: SettingType<string> = text): SettingType<string[]> {
  return {
    placeholder,
    parse(raw) {
      const items = Array.isArray(raw)
        ? raw
        : typeof raw === 'string'
          ? raw.split(',').map((s) => s.trim())
          : undefined;
      if (items === undefined) throw new SettingValueError('must be a comma-separated list');
      const values = items.filter((s) => s !== '').map((s) => item.parse(s));
      if (values.length === 0) throw new SettingValueError('must name at least one');
      return values;
    },
    show: (value) => value.join(','),
  };
}

/** A URL with one of `protocols` (`['nats:', 'tls:']`). */
export function url(protocols: readonly string[]): SettingType<string> {
  return {
    placeholder: '<url>',
    parse(raw) {
      let parsed: URL | undefined;
      try {
        parsed = typeof raw === 'string' ? new URL(raw) : undefined;
      } catch {
        parsed = undefined;
      }
      if (parsed === undefined || !protocols.includes(parsed.protocol)) {
        const examples = protocols.map((p) => `${p}//host:port`).join(' or ');
        throw new SettingValueError(`${shown(raw)} is not a URL like ${examples}`);
      }
      return raw as string;
    },
    show: (value) => value,
  };
}

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `250` -> `250ms`, `5000` -> `5s`, `120000` -> `2m`, `86400000` -> `24h`. */
export function showDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * Parses a duration with its unit (`250ms`, `5s`, `1.5s`, `2m`, `24h`) to milliseconds. A bare number
 * is refused: `--lease-ttl 5` could mean 5 ms or 5 s. Throws {@link SettingValueError}.
 */
export function parseDuration(raw: unknown): number {
  const value = typeof raw === 'string' ? raw.trim() : raw;
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+(\.\d+)?$/.test(value))) {
    throw new SettingValueError(
      `${shown(raw)} has no unit: write ${String(value)}s, or ${String(value)}ms for milliseconds (units: ms, s, m, h)`,
    );
  }
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value) : null;
  if (match === null) {
    throw new SettingValueError(`${shown(raw)} is not a duration (e.g. 500ms, 5s, 2m, 24h)`);
  }
  return Math.round(Number(match[1]) * UNITS[match[2] as keyof typeof UNITS]);
}

/** A duration (milliseconds) of at least `min` ms, and a whole number of `step` ms if given. */
export function duration(options: {
  readonly min: number;
  readonly step?: number;
}): SettingType<number> {
  return {
    placeholder: '<duration>',
    parse(raw) {
      const ms = parseDuration(raw);
      if (ms < options.min) {
        throw new SettingValueError(
          `${shown(raw)} is below the minimum, ${showDuration(options.min)}`,
        );
      }
      if (options.step !== undefined && ms % options.step !== 0) {
        throw new SettingValueError(
          `${shown(raw)} is not a whole number of ${showDuration(options.step)}`,
        );
      }
      return ms;
    },
    show: showDuration,
  };
}

function numberOf(raw: unknown): number | undefined {
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'string' && /^-?\d+(\.\d+)?$/.test(raw.trim())) return Number(raw);
  return undefined;
}

/** An integer of at least `min`. */
export function integer(options: { readonly min: number }): SettingType<number> {
  return {
    placeholder: '<n>',
    parse(raw) {
      const n = numberOf(raw);
      if (n === undefined || !Number.isSafeInteger(n)) {
        throw new SettingValueError(`${shown(raw)} is not an integer`);
      }
      if (n < options.min) {
        throw new SettingValueError(`${shown(raw)} is below the minimum, ${options.min}`);
      }
      return n;
    },
    show: String,
  };
}

/** One of the numbers `values`. */
export function oneOfNumbers<const V extends number>(values: readonly V[]): SettingType<V> {
  return {
    placeholder: '<n>',
    parse(raw) {
      const n = numberOf(raw);
      if (n === undefined || !(values as readonly number[]).includes(n)) {
        throw new SettingValueError(`${shown(raw)} must be ${values.join(' or ')}`);
      }
      return n as V;
    },
    show: String,
  };
}

/** A number in (0, 1]. */
export const fraction: SettingType<number> = {
  placeholder: '<fraction>',
  parse(raw) {
    const n = numberOf(raw);
    if (n === undefined || !(n > 0 && n <= 1)) {
      throw new SettingValueError(`${shown(raw)} is not a fraction in (0, 1]`);
    }
    return n;
  },
  show: String,
};

/** One of `values`. */
export function oneOf<const V extends string>(
  values: readonly V[],
  placeholder = `<${values.join('|')}>`,
): SettingType<V> {
  return {
    placeholder,
    parse(raw) {
      if (typeof raw !== 'string' || !(values as readonly string[]).includes(raw)) {
        throw new SettingValueError(`${shown(raw)} is not one of ${values.join(', ')}`);
      }
      return raw as V;
    },
    show: (value) => value,
  };
}

// ---------------------------------------------------------------------------------------------
// Loading

/** A config file as read: its path and its keys. */
export interface ConfigFile {
  readonly path: string;
  readonly values: Readonly<Record<string, unknown>>;
}

/** Where the first JSON syntax error in `text` is (an offset) and what it is. */
function jsonSyntaxError(text: string): { readonly offset: number; readonly reason: string } {
  let i = 0;
  const fail = (reason: string): never => {
    throw Object.assign(new Error(reason), { offset: i });
  };
  const at = (): string => text[i] ?? '';
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(at())) i++;
  };
  const unexpected = (): never =>
    fail(i >= text.length ? 'unexpected end of the file' : `unexpected ${JSON.stringify(at())}`);
  const string = (): void => {
    i++;
    while (i < text.length) {
      const c = at();
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        i++;
        if (at() === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('bad \\u escape');
          i += 4;
        } else if (!'"\\/bfnrt'.includes(at()) || at() === '') fail('bad escape');
      } else if (c < ' ') fail('a control character inside a string');
      i++;
    }
    fail('unterminated string');
  };
  const sequence = (close: string, item: () => void): void => {
    i++;
    skipSpace();
    if (at() === close) {
      i++;
      return;
    }
    for (;;) {
      item();
      skipSpace();
      if (at() === ',') {
        i++;
        continue;
      }
      if (at() === close) {
        i++;
        return;
      }
      fail(
        i >= text.length
          ? 'unexpected end of the file'
          : `expected ',' or '${close}', found ${JSON.stringify(at())}`,
      );
    }
  };
  const value = (): void => {
    skipSpace();
    const c = at();
    if (c === '{') {
      return sequence('}', () => {
        skipSpace();
        if (at() !== '"') fail(`expected a double-quoted key, found ${JSON.stringify(at())}`);
        string();
        skipSpace();
        if (at() !== ':') fail(`expected ':', found ${JSON.stringify(at())}`);
        i++;
        value();
      });
    }
    if (c === '[') return sequence(']', value);
    if (c === '"') return string();
    const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    number.lastIndex = i;
    if (number.test(text)) {
      i = number.lastIndex;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    unexpected();
  };
  try {
    value();
    skipSpace();
    if (i < text.length) fail('unexpected text after the JSON value');
    return { offset: text.length, reason: 'not valid JSON' };
  } catch (err) {
    return { offset: i, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** `line L column C` of offset `position` in `text` (both 1-based). */
function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `line ${line} column ${column}`;
}

/**
 * Reads a JSON config file. Throws {@link ConfigError} when it cannot be read, does not parse
 * (naming the file, the line and the column), is not an object, or has a key that is not in
 * `known` (naming the key, and the closest known one).
 */
export function readConfigFile(path: string, known: readonly string[]): ConfigFile {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([`config file ${path}: cannot be read (${code ?? String(err)})`]);
  }
  let values: unknown;
  try {
    values = JSON.parse(content);
  } catch {
    const { offset, reason } = jsonSyntaxError(content);
    throw new ConfigError([
      `config file ${path}: not valid JSON at ${lineAndColumn(content, offset)}: ${reason}`,
    ]);
  }
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new ConfigError([`config file ${path}: must be a JSON object of settings`]);
  }
  const problems = Object.keys(values)
    .filter((key) => !known.includes(key))
    .map((key) => {
      const near = closest(key, known);
      return `config file ${path}: unknown setting "${key}"${near === undefined ? '' : ` (did you mean "${near}"?)`}`;
    });
  if (problems.length > 0) throw new ConfigError(problems);
  return { path, values: values as Record<string, unknown> };
}

/** The known name nearest to `key` (case-insensitive edit distance <= 3), if any. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance <= 3 && (best === undefined || distance < best.distance))
      best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        (row[j] ?? 0) + 1,
        (next[j - 1] ?? 0) + 1,
        (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length] ?? 0;
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
