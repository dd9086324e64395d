import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { ConfigError } from '../config/settings.ts';
import {
  exportCheckpointLines,
  exportEntryLine,
  exportHeaderLine,
} from '../tools/log/exportFormat.ts';
import {
  loadNatsSourceConfig,
  LogUnavailableError,
  natsLogSource,
  type LogSource,
} from '../tools/log/logSource.ts';
import { addNatsSourceOptions, parseSeqFlag } from './settingOptions.ts';
import { EXIT_CODES_HELP, processOutput, type CommandOutput } from './replayCommand.ts';
import { EXIT_CODES } from '../tools/log/replayLog.ts';
import { readAdmitted } from '../tools/log/logReader.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** The flags of `understudy export`, as commander parses them. */
export interface ExportFlags extends Readonly<Record<string, unknown>> {
  readonly from?: number;
  readonly to?: number;
  /** A file, or `-` (the default) for stdout. */
  readonly out?: string;
  readonly skipBad?: boolean;
  /** Start from this checkpoint (seq or name) instead of the newest below `--from`. */
  readonly checkpoint?: string;
}

async function writeLine(stream: Writable, line: string): Promise<void> {
  if (!stream.write(`${line}\n`)) await once(stream, 'drain');
}

/**
 * Runs `understudy export` and returns its exit code: writes a header line and one NDJSON line
 * per entry of `--from..--to` (default: the whole log as it is now) to `--out` or stdout; a
 * summary goes to stderr. A corrupt stream message or a foreign entry (see logReader.ts) stops it
 * with exit 1 (the file then ends before it) unless `--skip-bad`, which leaves them out. When the
 * cluster has a checkpoint below `--from`, or the stream was trimmed below `--from`, the export
 * starts with the checkpoint (its frames) and holds the entries after it, so that `replay --file`
 * can fold the state at any seq it holds; a note on stderr says where it begins.
 */
export async function runExport(
  flags: ExportFlags,
  out: CommandOutput = processOutput,
): Promise<number> {
  const fromSeq = flags.from ?? 1;
  if (flags.to !== undefined && flags.to < fromSeq) {
    out.stderr('understudy export: --to is below --from\n');
    return EXIT_CODES.usage;
  }
  let source: LogSource | undefined;
  let file: WriteStream | undefined;
  let writeError: unknown;
  try {
    const config = loadNatsSourceConfig(flags);
    source = await natsLogSource(config);
    const toFile = flags.out !== undefined && flags.out !== '-';
    let target: Writable;
    if (toFile) {
      file = createWriteStream(flags.out ?? '');
      file.on('error', (err) => (writeError ??= err));
      target = file;
      await Promise.race([once(file, 'open'), once(file, 'close')]);
      if (writeError !== undefined) throw new OutputError(flags.out ?? '', writeError);
    } else if (out === processOutput) {
      target = process.stdout;
    } else {
      target = new Writable({
        write(chunk: Buffer | string, _encoding, done) {
          out.stdout(String(chunk));
          done();
        },
      });
    }
    await writeLine(
      target,
      exportHeaderLine({
        cluster: config.cluster,
        exportedAt: new Date().toISOString(),
        fromSeq,
        toSeq: flags.to ?? null,
      }),
    );
    let count = 0;
    let first = 0;
    let last = 0;
    let skipped = 0;
    let foreign = 0;
    let code: number = EXIT_CODES.ok;
    let checkpoint = '';
    const base = {
      mode: 'range',
      fromSeq,
      what: 'the export',
      named: flags.checkpoint,
    } as const;
    for await (const item of readAdmitted(source, { fromSeq, toSeq: flags.to, base })) {
      if (writeError !== undefined) break;
      if (item.kind === 'note') {
        out.stderr(`understudy export: ${item.text}\n`);
        continue;
      }
      if (item.kind === 'base') {
        for (const line of exportCheckpointLines(item.checkpoint, item.state)) {
          await writeLine(target, line);
        }
        checkpoint = ` after checkpoint ${item.checkpoint.name} (seq ${item.checkpoint.appliedSeq})`;
        continue;
      }
      if (item.kind === 'bad' || item.kind === 'foreign') {
        out.stderr(
          `understudy export: ${item.kind === 'bad' ? 'corrupt ' : ''}${item.error.message}\n`,
        );
        if (flags.skipBad !== true) {
          code = EXIT_CODES.corrupt;
          break;
        }
        if (item.kind === 'bad') skipped += 1;
        else foreign += 1;
        continue;
      }
      await writeLine(target, exportEntryLine(item.entry));
      if (first === 0) first = item.entry.seq;
      last = item.entry.seq;
      count += 1;
    }
    if (file !== undefined) {
      const closed = once(file, 'close');
      file.end();
      await closed;
      file = undefined;
    }
    if (writeError !== undefined) throw new OutputError(flags.out ?? '', writeError);
    out.stderr(
      `understudy export: ${count} entries${count > 0 ? ` (seqs ${first}..${last})` : ''}${checkpoint} from ${source.description} to ${toFile ? flags.out : 'stdout'}${skipped > 0 ? `; ${skipped} corrupt messages skipped` : ''}${foreign > 0 ? `; ${foreign} foreign entries skipped` : ''}${code === EXIT_CODES.corrupt ? '; stopped at a corrupt message or foreign entry' : ''}\n`,
    );
    return code;
  } catch (error) {
    if (error instanceof ConfigError) {
      out.stderr(`understudy export: ${error.message}\n`);
      return EXIT_CODES.usage;
    }
    if (error instanceof LogUnavailableError) {
      out.stderr(`understudy export: ${error.message}\n`);
      return EXIT_CODES.unavailable;
    }
    if (error instanceof OutputError || writeError !== undefined) {
      out.stderr(`understudy export: cannot write ${flags.out}: ${String(writeError)}\n`);
      return EXIT_CODES.output;
    }
    throw error;
  } finally {
    file?.destroy();
    await source?.close();
  }
}

/** The export file cannot be written. */
export class OutputError extends UnderstudyError {
  override readonly name = 'OutputError';
  readonly code = 'OUTPUT_UNWRITABLE';
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`cannot write ${path}`, { cause });
  }
}

/** `understudy export`: writes the OpLog (or a seq range) as NDJSON (exit codes in `--help`). */
export function registerExportCommand(program: Command): void {
  const command = program
    .command('export')
    .description(
      'write the OpLog (or a seq range) as NDJSON: readable entries with their raw frames',
    )
    .option('--from <seq>', 'first seq (default 1)', parseSeqFlag)
    .option('--to <seq>', 'last seq (default: the end of the log now)', parseSeqFlag)
    .option('--out <file>', "output file, '-' for stdout", '-')
    .option(
      '--skip-bad',
      'leave corrupt stream messages and foreign entries out instead of stopping',
    )
    .option(
      '--checkpoint <seq|name>',
      'start from this checkpoint (default: the newest below --from, when there is one)',
    );
  addNatsSourceOptions(command)
    .addHelpText(
      'after',
      `
Each line is one entry: seq, epoch, ts, time, op, key, checksum, prefixHash, the decoded event,
and raw (base64 of the binary frame, with its CRC). The first line is a header
{"format":"understudy-oplog","version":2,...}. When the cluster has a checkpoint below --from
(or trimmed its stream below --from), the export starts with that checkpoint (lines
{"checkpoint":{...},"chunk":N,"raw":...}) and holds the entries after it, so that
'understudy replay --file' can fold the state at any seq it holds. 'understudy replay --file'
reads it back and detects any changed byte.

Examples:
  understudy export --cluster demo --nats nats://127.0.0.1:4222 --out demo.ndjson
  understudy export --cluster demo --from 500 --to 600 --out range.ndjson
  understudy export --cluster demo --checkpoint 90 | understudy replay --file - --at 95
${EXIT_CODES_HELP}`,
    )
    .action(async (flags: ExportFlags) => {
      process.exitCode = await runExport(flags);
    });
}
