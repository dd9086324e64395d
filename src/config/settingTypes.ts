/**
 * The types of setting values: each parses a raw value (a flag's text, a variable, a JSON
 * value of the config file) and checks it, and says how `--help` shows it.
 */
import { type SettingType, SettingValueError } from './settings.ts';

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
