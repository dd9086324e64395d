/**
 * The flight recorder (`understudy node --record FILE`): the node's inspection records as
 * NDJSON, one record a line, bounded. At most two files exist, FILE and FILE.1, each at most
 * `maxBytes` (default 16 MiB): when the next line would take FILE past the cap, and when the
 * node starts with a non-empty FILE, FILE becomes FILE.1 (replacing it) and a new FILE begins
 * with the root actor's record, so each file can be replayed alone. `readRecording` reads
 * FILE.1 then FILE.
 */
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import type { InspectionRecord } from './inspectionRecord.ts';

/** The default cap of one recording file: 16 MiB (two files: 32 MiB on disk at most). */
export const DEFAULT_RECORD_MAX_BYTES = 16 * 1024 * 1024;

export interface FlightRecorderOptions {
  /** Largest size of one file (bytes); default {@link DEFAULT_RECORD_MAX_BYTES}. */
  readonly maxBytes?: number;
  /** The records a new file begins with (the root actor as it is now). */
  readonly header?: () => readonly InspectionRecord[];
}

export class FlightRecorder {
  #fd: number | undefined;
  #size = 0;
  readonly #maxBytes: number;

  constructor(
    readonly path: string,
    private readonly options: FlightRecorderOptions = {},
  ) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_RECORD_MAX_BYTES;
    if (existsSync(path) && statSync(path).size > 0) renameSync(path, `${path}.1`);
    this.#fd = openSync(path, 'w');
  }

  /** Appends one record (rotating first when the file would pass its cap). Never throws. */
  write(record: InspectionRecord): void {
    if (this.#fd === undefined) return;
    const line = `${JSON.stringify(record)}\n`;
    const bytes = Buffer.byteLength(line);
    try {
      if (this.#size > 0 && this.#size + bytes > this.#maxBytes) this.#rotate();
      this.#append(line, bytes);
    } catch {
      // A full disk or a removed directory must not stop the node: the recording just ends.
      this.close();
    }
  }

  /** Closes the file; later writes are ignored. Idempotent. */
  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    closeSync(fd);
  }

  #append(line: string, bytes: number): void {
    if (this.#fd === undefined) return;
    writeSync(this.#fd, line);
    this.#size += bytes;
  }

  #rotate(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    renameSync(this.path, `${this.path}.1`);
    this.#fd = openSync(this.path, 'w');
    this.#size = 0;
    for (const record of this.options.header?.() ?? []) {
      const line = `${JSON.stringify(record)}\n`;
      this.#append(line, Buffer.byteLength(line));
    }
  }
}

/** What {@link readRecording} read. */
export interface Recording {
  readonly records: InspectionRecord[];
  /** Lines that were not a record (a line cut short by a kill -9, say). */
  readonly skippedLines: number;
}

function isRecord(value: unknown): value is InspectionRecord {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['type'] === 'string' &&
    v['type'].startsWith('@xstate.') &&
    typeof v['sessionId'] === 'string' &&
    typeof v['createdAt'] === 'string'
  );
}

/** Parses NDJSON inspection records; a line that is not one is counted, not fatal. */
export function parseRecording(text: string): Recording {
  const records: InspectionRecord[] = [];
  let skippedLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const value: unknown = JSON.parse(line);
      if (isRecord(value)) records.push(value);
      else skippedLines++;
    } catch {
      skippedLines++;
    }
  }
  return { records, skippedLines };
}

/** Reads a recording: `path.1` (the older part, when it exists) then `path`. */
export function readRecording(path: string): Recording {
  const parts = [`${path}.1`, path].filter((p, i) => i === 1 || existsSync(p));
  const read = parts.map((p) => parseRecording(readFileSync(p, 'utf8')));
  return {
    records: read.flatMap((r) => r.records),
    skippedLines: read.reduce((n, r) => n + r.skippedLines, 0),
  };
}
