import type { Command } from 'commander';
import { readAdmitted } from '../tools/log/logReader.ts';
import { ConfigError } from '../config/settings.ts';
import type { CorruptEntryError } from '../tools/log/exportFormat.ts';
import {
  fileLogSource,
  loadNatsSourceConfig,
  LogUnavailableError,
  natsLogSource,
  type LogSource,
} from '../tools/log/logSource.ts';
import { addNatsSourceOptions, parseSeqFlag } from './settingOptions.ts';
import { formatHistoryLine, formatSummary, historyJson } from '../tools/log/replayFormat.ts';
import { EXIT_CODES, replayExitCode, replayLog } from '../tools/log/replayLog.ts';
import {
  planReplay,
  replayBase,
  ReplayUsageError,
  type ReplayOptions,
} from '../tools/log/replayPlan.ts';

/** Where a command writes (the process's stdout/stderr; tests capture them). */
export interface CommandOutput {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** The process's stdout and stderr. */
export const processOutput: CommandOutput = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** The flags of `understudy replay`, as commander parses them. */
export interface ReplayFlags extends Readonly<Record<string, unknown>> {
  readonly file?: string;
  readonly from?: number;
  readonly to?: number;
  readonly at?: number;
  readonly key?: string;
  readonly skipBad?: boolean;
  readonly json?: boolean;
  readonly checkpoint?: string;
}

/** Text for `--help`: the exit codes of `replay` and `export`. */
export const EXIT_CODES_HELP = `
Exit codes:
  ${EXIT_CODES.ok}  done (with --skip-bad also when bad entries were skipped; they are listed on stderr)
  ${EXIT_CODES.corrupt}  a corrupt entry stopped it (bad JSON or base64, CRC or checksum mismatch,
     seq gap or reordering, an event that does not fold) or a foreign entry (one no elected
     primary wrote: a fence the log does not continue, an entry of another epoch); the
     message names its seq (or its line / stream message when the seq is unreadable)
  ${EXIT_CODES.usage}  bad or conflicting flags
  ${EXIT_CODES.unavailable}  the log cannot be read (no server, no stream, no file) or lacks the range
     asked for (starts after seq 1 when the state is needed, ends before --at)
  ${EXIT_CODES.output}  (export) the output file cannot be written
`;

const REPLAY_HELP = `
Modes:
  --at SEQ            fold to SEQ and print a state summary (objects, segments with used/size,
                      digest, epoch); with --key K also K's record at SEQ
  --key K             print every entry that touched K (object key or segment id) within
                      --from..--to: seq, epoch, time, op, event
  (neither)           the state summary at --to, or at the end of the log
  The live stream is read from the newest checkpoint at or below the seq asked for (the nodes
  trim the stream below their oldest kept checkpoint): its state, then the entries after it.
  --checkpoint SEQ|NAME starts from that one instead ('understudy checkpoint list').
  Without a checkpoint the state needs every entry from seq 1: --from above 1 then only works
  with --key alone (and entries that changed K only as a side effect, such as UNMOUNT_SEGMENT,
  are not recognised). Asked for entries that were trimmed, it says where the log begins.
${EXIT_CODES_HELP}
Examples:
  understudy replay --cluster demo --nats nats://127.0.0.1:4222 --key user/42
  understudy replay --cluster demo --at 95 --key user/42 --checkpoint 90
  understudy export --cluster demo --out demo.ndjson && understudy replay --file demo.ndjson --at 120
`;

/**
 * Opens the source the flags name: `--file`, or else the live stream (`--cluster`/`--nats`
 * or their environment). Throws {@link ReplayUsageError} for both at once,
 * {@link ConfigError} for bad NATS settings, {@link LogUnavailableError} when the
 * source cannot be opened.
 */
export async function openLogSource(flags: Readonly<Record<string, unknown>>): Promise<LogSource> {
  const file = flags['file'];
  if (typeof file === 'string') {
    if (flags['cluster'] !== undefined || flags['nats'] !== undefined) {
      throw new ReplayUsageError(
        '--file reads an export: it cannot be combined with --cluster/--nats',
      );
    }
    return fileLogSource(file);
  }
  return natsLogSource(loadNatsSourceConfig(flags));
}

function problemJson(error: CorruptEntryError): Record<string, unknown> {
  return {
    ...(error.seq !== undefined ? { seq: error.seq } : {}),
    ...(error.line !== undefined ? { line: error.line } : {}),
    ...(error.streamSeq !== undefined ? { streamSeq: error.streamSeq } : {}),
    reason: error.reason,
  };
}

/**
 * Runs `understudy replay` with parsed flags and returns its exit code (see
 * {@link EXIT_CODES}). Output: history lines or the state summary on stdout (JSON with
 * `--json`); bad entries and errors on stderr.
 */
export async function runReplay(
  flags: ReplayFlags,
  out: CommandOutput = processOutput,
): Promise<number> {
  const options: ReplayOptions = {
    fromSeq: flags.from,
    toSeq: flags.to,
    atSeq: flags.at,
    key: flags.key,
    skipBad: flags.skipBad === true,
    checkpoint: flags.checkpoint,
  };
  const json = flags.json === true;
  let source: LogSource | undefined;
  try {
    const plan = planReplay(options);
    source = await openLogSource(flags);
    const base = replayBase(options);
    const items = readAdmitted(source, { fromSeq: plan.fromSeq, toSeq: plan.readTo, base });
    const result = await replayLog(items, options, {
      onNote: (text) => out.stderr(`understudy replay: ${text}\n`),
      onHistory: (item) =>
        out.stdout(`${json ? JSON.stringify(historyJson(item)) : formatHistoryLine(item)}\n`),
      onProblem: (error) =>
        out.stderr(
          `understudy replay: ${error.reason.startsWith('foreign') ? '' : 'corrupt '}${error.message}${options.skipBad === true ? ' (skipped)' : ''}\n`,
        ),
    });
    if (result.stoppedBy !== undefined) {
      out.stderr(
        `understudy replay: stopped at the corrupt or foreign entry (last good seq ${result.lastSeq}); --skip-bad goes on past bad entries\n`,
      );
    } else if (result.unavailable !== undefined) {
      out.stderr(`understudy replay: ${source.description}: ${result.unavailable}\n`);
    } else if (result.summary !== undefined) {
      const from = result.checkpoint;
      if (from !== undefined && !json) {
        out.stderr(
          `understudy replay: folded from checkpoint ${from.name} (seq ${from.appliedSeq})\n`,
        );
      }
      if (json) {
        const keyPart =
          options.key !== undefined ? { key: { key: options.key, record: result.keyRecord } } : {};
        out.stdout(
          `${JSON.stringify({ ...result.summary, ...keyPart, checkpoint: from?.name ?? null, skipped: result.problems.map(problemJson) })}\n`,
        );
      } else {
        out.stdout(formatSummary(result.summary, options.key, result.keyRecord));
      }
    } else if (options.key !== undefined && !json) {
      out.stderr(
        `understudy replay: ${result.historyCount} entries touched ${JSON.stringify(options.key)} (read seqs ${result.firstSeq}..${result.lastSeq})\n`,
      );
    }
    if (result.problems.length > 0 && result.stoppedBy === undefined) {
      out.stderr(`understudy replay: skipped ${result.problems.length} bad entries\n`);
    }
    return replayExitCode(result);
  } catch (error) {
    if (error instanceof ReplayUsageError || error instanceof ConfigError) {
      out.stderr(`understudy replay: ${error.message}\n`);
      return EXIT_CODES.usage;
    }
    if (error instanceof LogUnavailableError) {
      out.stderr(`understudy replay: ${error.message}\n`);
      return EXIT_CODES.unavailable;
    }
    throw error;
  } finally {
    await source?.close();
  }
}

/** `understudy replay`: folds the live stream or an exported file (exit codes in `--help`). */
export function registerReplayCommand(program: Command): void {
  const command = program
    .command('replay')
    .description(
      'fold the OpLog (live stream or an export file): state at a seq, or the history of a key',
    )
    .option(
      '--file <file>',
      "an export of 'understudy export' ('-' for stdin) instead of the stream",
    )
    .option('--from <seq>', 'first seq to read (history only; default 1)', parseSeqFlag)
    .option('--to <seq>', 'last seq to read (default: the end of the log)', parseSeqFlag)
    .option('--at <seq>', 'print the state summary at this seq', parseSeqFlag)
    .option('--key <key>', "the key's history, or with --at its record at that seq")
    .option('--skip-bad', 'report corrupt and foreign entries and go on instead of stopping')
    .option('--json', 'JSON output (one object per history entry, or one summary)')
    .option(
      '--checkpoint <seq|name>',
      'start from this checkpoint (default: the newest at or below the seq asked for)',
    );
  addNatsSourceOptions(command)
    .addHelpText('after', REPLAY_HELP)
    .action(async (flags: ReplayFlags) => {
      process.exitCode = await runReplay(flags);
    });
}
