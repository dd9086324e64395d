import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CorruptEntryError,
  exportEntryLine,
  exportHeaderLine,
  parseExportLine,
} from '../../src/tools/log/exportFormat.ts';
import { readAdmitted } from '../../src/tools/log/logReader.ts';
import {
  fileLogSource,
  loadNatsSourceConfig,
  type LogItem,
} from '../../src/tools/log/logSource.ts';
import { formatHistoryLine, formatSummary } from '../../src/tools/log/replayFormat.ts';
import { replayExitCode, replayLog, type HistoryItem } from '../../src/tools/log/replayLog.ts';
import {
  planReplay,
  ReplayUsageError,
  type ReplayOptions,
} from '../../src/tools/log/replayPlan.ts';
import { runReplay } from '../../src/cli/replayCommand.ts';
import { captureOutput as capture } from '../harness/cli.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import type { MetadataEvent } from '../../src/domain/model/types.ts';
import { ConfigError } from '../../src/config/settings.ts';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const SEG = 1 << 20;

/** A small consistent history: epoch fence, two segments, two objects, one removed. */
const EVENTS: MetadataEvent[] = [
  { op: 'EPOCH', epoch: 7, nodeId: 'n1' },
  { op: 'MOUNT_SEGMENT', segmentId: 'a-seg', nodeId: 'a', size: SEG },
  { op: 'MOUNT_SEGMENT', segmentId: 'b-seg', nodeId: 'b', size: SEG },
  {
    op: 'PUT_START',
    key: 'k1',
    size: 100,
    replicas: [
      { segmentId: 'a-seg', nodeId: 'a', offset: 0, length: 100, status: 'processing' },
      { segmentId: 'b-seg', nodeId: 'b', offset: 0, length: 100, status: 'processing' },
    ],
  },
  { op: 'PUT_END', key: 'k1' },
  {
    op: 'PUT_START',
    key: 'k2',
    size: 50,
    replicas: [{ segmentId: 'a-seg', nodeId: 'a', offset: 100, length: 50, status: 'processing' }],
  },
  { op: 'PUT_END', key: 'k2' },
  { op: 'REMOVE', key: 'k1' },
  { op: 'UNMOUNT_SEGMENT', segmentId: 'a-seg' },
];

const ENTRIES: OpLogEntry[] = EVENTS.map((event, i) =>
  toEntry({ seq: i + 1, epoch: 7, ts: T0 + i * 1000, event }),
);
const LINES = ENTRIES.map(exportEntryLine);

/** The items a file source would yield for these lines (line numbers from 1). */
function itemsOf(lines: readonly string[]): AsyncIterable<LogItem> {
  return (async function* () {
    await Promise.resolve();
    for (const [i, text] of lines.entries()) {
      try {
        const parsed = parseExportLine(text, i + 1);
        if (parsed?.kind !== 'entry') continue;
        yield {
          kind: 'entry' as const,
          entry: parsed.entry,
          logged: parsed.logged,
          position: { seq: parsed.entry.seq, line: i + 1 },
        };
      } catch (error) {
        if (!(error instanceof CorruptEntryError)) throw error;
        yield { kind: 'bad' as const, error };
      }
    }
  })();
}

async function replayLines(lines: readonly string[], options: ReplayOptions) {
  const history: HistoryItem[] = [];
  const source = { description: 'lines', read: () => itemsOf(lines), close: async () => {} };
  const result = await replayLog(readAdmitted(source), options, {
    onHistory: (item) => history.push(item),
  });
  return { result, history };
}

/** `line` with the character at `at` replaced by a different one. */
function flipChar(line: string, at: number): string {
  const c = line[at] ?? '';
  const next = c === 'x' ? 'y' : c === '0' ? '1' : c === 'A' ? 'B' : 'x';
  return line.slice(0, at) + next + line.slice(at + 1);
}

/** `line` with one byte of its raw frame flipped (base64 re-encoded: still valid base64). */
function flipRawByte(line: string, byteIndex: number): string {
  const value = JSON.parse(line) as Record<string, unknown>;
  const raw = Buffer.from(value['raw'] as string, 'base64');
  raw[byteIndex % raw.length] = (raw[byteIndex % raw.length] ?? 0) ^ 0x5a;
  return JSON.stringify({ ...value, raw: raw.toString('base64') });
}

describe('export lines', () => {
  it('round-trip every entry with its readable fields', () => {
    for (const [i, line] of LINES.entries()) {
      const parsed = parseExportLine(line, i + 1);
      expect(parsed?.kind).toBe('entry');
      if (parsed?.kind !== 'entry') continue;
      expect(parsed.entry).toEqual(ENTRIES[i]);
      expect(parsed.logged.event).toEqual(EVENTS[i]);
      const readable = JSON.parse(line) as Record<string, unknown>;
      expect(readable['seq']).toBe(i + 1);
      expect(readable['time']).toBe(new Date(T0 + i * 1000).toISOString());
      expect(readable['event']).toEqual(EVENTS[i]);
    }
  });

  it('skip blank lines and recognise the header', () => {
    expect(parseExportLine('   ', 1)).toBeUndefined();
    const header = parseExportLine(
      exportHeaderLine({
        cluster: 'c',
        exportedAt: new Date(T0).toISOString(),
        fromSeq: 1,
        toSeq: null,
      }),
      1,
    );
    expect(header).toMatchObject({ kind: 'header', header: { cluster: 'c', fromSeq: 1 } });
  });

  it('detect any changed byte of the raw frame, naming the seq and line', () => {
    const line = LINES[3] ?? '';
    const frameBytes = Buffer.from((JSON.parse(line) as { raw: string }).raw, 'base64').length;
    for (let b = 0; b < frameBytes; b++) {
      const bad = flipRawByte(line, b);
      expect(() => parseExportLine(bad, 9), `byte ${b}`).toThrow(CorruptEntryError);
      try {
        parseExportLine(bad, 9);
      } catch (error) {
        expect((error as CorruptEntryError).line).toBe(9);
        expect((error as CorruptEntryError).seq).toBe(4);
      }
    }
  });

  it('detect any changed character of the line', () => {
    for (const line of [LINES[0] ?? '', LINES[3] ?? '', LINES[8] ?? '']) {
      for (let at = 0; at < line.length; at++) {
        expect(() => parseExportLine(flipChar(line, at), 1), `char ${at} of ${line}`).toThrow(
          CorruptEntryError,
        );
      }
    }
  });

  it('read the seq of unparseable JSON when it is there, else only the line', () => {
    const truncated = (LINES[4] ?? '').slice(0, 40);
    expect(() => parseExportLine(truncated, 5)).toThrow(
      /entry at seq 5 \(line 5\): not valid JSON/,
    );
    expect(() => parseExportLine('{"sq":', 6)).toThrow(/entry on line 6 \(seq unreadable\)/);
    const noRaw = JSON.stringify({ ...(JSON.parse(LINES[1] ?? '') as object), raw: '**' });
    expect(() => parseExportLine(noRaw, 2)).toThrow(/seq 2 .*not base64/);
  });

  it('reject readable fields that disagree with the frame', () => {
    const value = JSON.parse(LINES[3] ?? '') as Record<string, unknown>;
    const edited = JSON.stringify({
      ...value,
      event: { ...(value['event'] as object), size: 101 },
    });
    expect(() => parseExportLine(edited, 4)).toThrow(/'event' disagrees/);
    const extra = JSON.stringify({ ...value, note: 'x' });
    expect(() => parseExportLine(extra, 4)).toThrow(/unknown fields note/);
  });
});

describe('replayLog', () => {
  it('plans: --at folds from 1; --from needs --key alone', () => {
    expect(planReplay({ atSeq: 5 })).toEqual({ mode: 'state', fromSeq: 1, readTo: 5 });
    expect(planReplay({ key: 'k', fromSeq: 3 })).toEqual({
      mode: 'history',
      fromSeq: 3,
      readTo: undefined,
    });
    expect(() => planReplay({ atSeq: 5, fromSeq: 2 })).toThrow(ReplayUsageError);
    expect(() => planReplay({ fromSeq: 2 })).toThrow(ReplayUsageError);
    expect(() => planReplay({ atSeq: 5, toSeq: 4 })).toThrow(ReplayUsageError);
    expect(() => planReplay({ toSeq: 0 })).toThrow(ReplayUsageError);
  });

  it('summarises the state at a seq, with a key record', async () => {
    const { result } = await replayLines(LINES, { atSeq: 5, key: 'k1' });
    expect(replayExitCode(result)).toBe(0);
    expect(result.summary).toMatchObject({
      seq: 5,
      epoch: 7,
      epochNodeId: 'n1',
      objectCount: 1,
      capacity: 2 * SEG,
      used: 200,
      approximate: false,
    });
    expect(result.summary?.segments).toEqual([
      { id: 'a-seg', nodeId: 'a', size: SEG, used: 100 },
      { id: 'b-seg', nodeId: 'b', size: SEG, used: 100 },
    ]);
    expect(result.summary?.digest).toMatch(/^[0-9a-f]{8}$/);
    expect(result.keyRecord?.replicas.map((r) => r.status)).toEqual(['complete', 'complete']);
    const text = formatSummary(result.summary!, 'k1', result.keyRecord);
    expect(text).toContain('state at seq 5 (2026-11-25T12:00:04.000Z)');
    expect(text).toContain('a-seg (node a) used 100 / 1048576 bytes');
    expect(text).toContain('key "k1" at seq 5: size 100, last changed at seq 5');
  });

  it('summarises the end of the log by default', async () => {
    const { result } = await replayLines(LINES, {});
    expect(result.summary).toMatchObject({ seq: 9, objectCount: 0, capacity: SEG, used: 0 });
  });

  it('lists every entry that touched a key, including side effects when folding from 1', async () => {
    const { result, history } = await replayLines(LINES, { key: 'k2' });
    expect(history.map((h) => [h.entry.seq, h.entry.op])).toEqual([
      [6, 'PUT_START'],
      [7, 'PUT_END'],
      [9, 'UNMOUNT_SEGMENT'],
    ]);
    expect(history[2]?.record).toBeNull();
    expect(result.historyCount).toBe(3);
    expect(formatHistoryLine(history[0]!)).toBe(
      `seq 6  epoch 7  2026-11-25T12:00:05.000Z  PUT_START  ${JSON.stringify(EVENTS[5])}`,
    );
  });

  it('lists history from a later seq without folding (record unknown)', async () => {
    const { history } = await replayLines(LINES, { key: 'k1', fromSeq: 5 });
    expect(history.map((h) => [h.entry.seq, h.record])).toEqual([
      [5, undefined],
      [8, undefined],
    ]);
  });

  it('stops at a corrupt entry with its seq, or skips it with skipBad', async () => {
    const lines = [...LINES];
    lines[4] = flipRawByte(lines[4] ?? '', 60);
    const stopped = await replayLines(lines, { atSeq: 9 });
    expect(stopped.result.stoppedBy?.seq).toBe(5);
    expect(stopped.result.stoppedBy?.line).toBe(5);
    expect(stopped.result.lastSeq).toBe(4);
    expect(replayExitCode(stopped.result)).toBe(1);

    const skipped = await replayLines(lines, { key: 'k2', skipBad: true });
    expect(replayExitCode(skipped.result)).toBe(0);
    expect(skipped.result.problems.map((p) => p.seq)).toEqual([5]);
    // After a skipped entry no state is folded: only entries naming the key are listed.
    expect(skipped.history.map((h) => h.entry.seq)).toEqual([6, 7]);

    const approx = await replayLines(lines, { atSeq: 3, skipBad: true });
    expect(approx.result.summary?.approximate).toBe(false);
    const later = await replayLines(lines, { atSeq: 7, skipBad: true });
    expect(later.result.summary).toMatchObject({ seq: 7, approximate: true });
  });

  it('tells foreign entries (a forged fence, another epoch) from the log: stops at one, or skips it and keeps the state exact', async () => {
    const forged = (seq: number, epoch: number, event: MetadataEvent): string =>
      exportEntryLine(toEntry({ seq, epoch, ts: T0, event }));
    // Each slipped in before the real entry of the same seq: a forged fence of epoch 1e9, a
    // REMOVE of k2 stamped with an epoch nobody was elected at, one of an earlier epoch.
    const lines = [
      ...LINES.slice(0, 4),
      forged(5, 1e9, { op: 'EPOCH', epoch: 1e9, nodeId: 'intruder' }),
      ...LINES.slice(4, 6),
      forged(7, 1007, { op: 'REMOVE', key: 'k2' }),
      LINES[6]!,
      forged(8, 6, { op: 'REMOVE', key: 'k2' }),
      ...LINES.slice(7),
    ];
    const exact = await replayLines(LINES, { atSeq: 9 });
    const stopped = await replayLines(lines, { atSeq: 9 });
    expect(stopped.result.stoppedBy?.line).toBe(5);
    expect(stopped.result.stoppedBy?.reason).toMatch(/foreign entry.*EPOCH 1000000000 fence/);
    expect(replayExitCode(stopped.result)).toBe(1);

    const skipped = await replayLines(lines, { atSeq: 9, skipBad: true });
    expect(replayExitCode(skipped.result)).toBe(0);
    expect(skipped.result.problems.map((p) => [p.seq, p.line])).toEqual([
      [5, 5],
      [7, 8],
      [8, 10],
    ]);
    expect(skipped.result.summary).toEqual(exact.result.summary);
    expect(skipped.result.summary?.approximate).toBe(false);
    // Folding goes on (the skipped entries are no loss): the history has the side effects too.
    const history = await replayLines(lines, { key: 'k2', skipBad: true });
    const exactHistory = await replayLines(LINES, { key: 'k2' });
    expect(history.history.map((h) => h.entry.seq)).toEqual([6, 7, 9]);
    expect(history.history).toEqual(exactHistory.history);
  });

  it('counts a real fence that ends the log, or that the next fence follows at once', async () => {
    const fence = (seq: number, epoch: number): string =>
      exportEntryLine(toEntry({ seq, epoch, ts: T0, event: { op: 'EPOCH', epoch, nodeId: 'n2' } }));
    // A primary that died right after its fence (epoch 8), then one that wrote nothing yet (9).
    const lines = [...LINES, fence(10, 8), fence(11, 9)];
    const { result } = await replayLines(lines, {});
    expect(result.problems).toEqual([]);
    expect(result.summary).toMatchObject({ seq: 11, epoch: 9, epochNodeId: 'n2' });
  });

  it('reports a seq gap and a reordering as corrupt', async () => {
    const gap = await replayLines([...LINES.slice(0, 3), ...LINES.slice(4)], {});
    expect(gap.result.stoppedBy?.message).toMatch(
      /entry at seq 5 \(line 4\): seq gap: 1 entries missing after seq 3/,
    );
    const dup = await replayLines([...LINES.slice(0, 4), LINES[2] ?? ''], { key: 'k1' });
    expect(dup.result.stoppedBy?.message).toMatch(/seq 3 after seq 4: out of order/);
  });

  it('reports an entry that does not fold as corrupt', async () => {
    // PUT_END of k1 twice: valid frames, impossible history.
    const again = exportEntryLine(toEntry({ seq: 6, epoch: 7, ts: T0, event: EVENTS[4]! }));
    const { result } = await replayLines([...LINES.slice(0, 5), again], {});
    expect(result.stoppedBy?.seq).toBe(6);
    expect(result.stoppedBy?.reason).toMatch(/does not fold/);
  });

  it('says when the log lacks what the state needs', async () => {
    const late = await replayLines(LINES.slice(2), { atSeq: 5 });
    expect(late.result.unavailable).toMatch(/starts at seq 3/);
    expect(replayExitCode(late.result)).toBe(3);
    const short = await replayLines(LINES, { atSeq: 20 });
    expect(short.result.unavailable).toMatch(/ends at seq 9, before --at 20/);
  });
});

describe('replay --file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-replay-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file source from a seq, skipping the header', async () => {
    const file = join(dir, 'log.ndjson');
    const header = exportHeaderLine({ cluster: 'c', exportedAt: 'x', fromSeq: 1, toSeq: null });
    await writeFile(file, `${[header, ...LINES].join('\n')}\n`);
    const seqs: number[] = [];
    for await (const item of fileLogSource(file).read(3, 6)) {
      if (item.kind === 'entry') seqs.push(item.entry.seq);
    }
    expect(seqs).toEqual([3, 4, 5, 6]);
  });

  it('runs the command: summary, history JSON, corrupt line and exit codes', async () => {
    const file = join(dir, 'bad.ndjson');
    const lines = [...LINES];
    lines[6] = flipRawByte(lines[6] ?? '', 30);
    await writeFile(file, `${lines.join('\n')}\n`);

    const stopped = capture();
    expect(await runReplay({ file, at: 9 }, stopped)).toBe(1);
    expect(stopped.err).toContain('corrupt entry at seq 7 (line 7)');
    expect(stopped.out).toBe('');

    const skipped = capture();
    expect(await runReplay({ file, key: 'k2', skipBad: true, json: true }, skipped)).toBe(0);
    const seqs = skipped.out
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs).toEqual([6]);
    expect(skipped.err).toContain('seq 7 (line 7)');

    const usage = capture();
    expect(await runReplay({ file, at: 3, from: 2 }, usage)).toBe(2);
    const missing = capture();
    expect(await runReplay({ file: join(dir, 'nope.ndjson') }, missing)).toBe(3);
  });
});

describe('loadNatsSourceConfig', () => {
  it('takes flags first, then the environment of `understudy node`', () => {
    const env = {
      UNDERSTUDY_CLUSTER: 'from-env',
      UNDERSTUDY_NATS: 'nats://a:1, nats://b:2',
      UNDERSTUDY_NATS_USER: 'reader',
      UNDERSTUDY_NATS_PASSWORD: 'secret',
    };
    expect(loadNatsSourceConfig({}, env)).toEqual({
      cluster: 'from-env',
      servers: ['nats://a:1', 'nats://b:2'],
      security: { natsUser: 'reader', natsPassword: 'secret' },
    });
    expect(loadNatsSourceConfig({ cluster: 'flag', nats: 'nats://c:3' }, env)).toMatchObject({
      cluster: 'flag',
      servers: ['nats://c:3'],
    });
  });

  it('names every problem', () => {
    expect(() => loadNatsSourceConfig({}, {})).toThrow(ConfigError);
    expect(() =>
      loadNatsSourceConfig(
        { cluster: 'c', natsTokenFile: '/t' },
        { UNDERSTUDY_NATS_PASSWORD: 'p' },
      ),
    ).toThrow(/UNDERSTUDY_NATS_PASSWORD .* needs --nats-user \(UNDERSTUDY_NATS_USER\)/);
  });
});
