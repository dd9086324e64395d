/**
 * Reading the JSON config file: a syntax error is located by line and column, and an unknown
 * key gets the closest known one as a suggestion.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './settings.ts';

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
