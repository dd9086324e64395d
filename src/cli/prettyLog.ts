// The node's log as a person reads it on a terminal: one line per record, time, level, message
// and the other fields as key=value. Anywhere else (a pipe, a file, a log collector) the log stays
// pino's JSON, one object per line: `understudy node` decides by whether stdout is a terminal.

const LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every record has, shown in the line's head or not at all. */
const HEAD = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s="]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One pino JSON record as a line: `09:41:02.123 INFO  became primary event=promoted epoch=3`.
 * A line that is not a JSON object is returned as it is.
 */
export function formatLogLine(json: string): string {
  let record: unknown;
  try {
    record = JSON.parse(json);
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return `${json}\n`;
  const fields = record as Record<string, unknown>;
  const time = typeof fields['time'] === 'number' ? new Date(fields['time']) : new Date();
  const clock = time.toISOString().slice(11, 23);
  const level = LEVELS[Number(fields['level'])] ?? fieldText(fields['level'] ?? '');
  const rest = Object.entries(fields)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, value]) => `${key}=${fieldText(value)}`);
  const msg = typeof fields['msg'] === 'string' ? fields['msg'] : '';
  return `${[clock, level.padEnd(5), msg, ...rest].filter((p) => p !== '').join(' ')}\n`;
}

/** Where pino writes: a stream that formats each record (pino writes one record per call). */
export interface LogDestination {
  write(chunk: string): boolean;
}

/**
 * The node's log destination: formatted lines when `out` is a terminal, else undefined (pino's
 * own JSON to stdout).
 */
export function logDestination(
  out: { readonly isTTY?: boolean; write(text: string): boolean } = process.stdout,
): LogDestination | undefined {
  if (out.isTTY !== true) return undefined;
  return {
    write: (chunk) => {
      let ok = true;
      for (const line of chunk.split('\n')) if (line !== '') ok = out.write(formatLogLine(line));
      return ok;
    },
  };
}
