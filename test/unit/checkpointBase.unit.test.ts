// Where replay and export start on a trimmed stream (chooseBase), and an export that starts from
// a checkpoint read back by `replay --file`: the state at any seq it holds, the history of a key
// with where it begins.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReplay } from '../../src/cli/replayCommand.ts';
import { captureOutput as capture } from '../harness/cli.ts';
import { digestHex, stateDigest } from '../../src/domain/log/checksum.ts';
import { foldAll } from '../../src/domain/fold/fold.ts';
import { toEntry, fromEntry } from '../../src/domain/log/eventCodec.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { MetadataEvent } from '../../src/domain/model/types.ts';
import type { CheckpointInfo } from '../../src/ports/checkpointStore.ts';
import { chooseBase } from '../../src/tools/log/checkpointBase.ts';
import { exportCheckpointLines, exportEntryLine } from '../../src/tools/log/exportFormat.ts';
import { checkpointInfo } from '../fixtures/checkpointInfo.ts';

const cp = (appliedSeq: number): CheckpointInfo => checkpointInfo(appliedSeq);

describe('chooseBase', () => {
  const listed = [cp(270), cp(180), cp(90)];
  const trimmed = { firstEntrySeq: 90, lastEntrySeq: 300 };

  it('starts a state from the newest checkpoint at or below the seq', () => {
    expect(chooseBase(listed, trimmed, { mode: 'state', atSeq: 95 })).toMatchObject({
      kind: 'start',
      checkpoint: { appliedSeq: 90 },
      readFrom: 91,
    });
    expect(chooseBase(listed, trimmed, { mode: 'state', atSeq: undefined })).toMatchObject({
      checkpoint: { appliedSeq: 270 },
    });
    expect(chooseBase(listed, trimmed, { mode: 'state', atSeq: 180 })).toMatchObject({
      checkpoint: { appliedSeq: 180 },
      readFrom: 181,
    });
  });

  it('says plainly when the state asked for was trimmed', () => {
    const choice = chooseBase(listed, trimmed, { mode: 'state', atSeq: 86 });
    expect(choice).toEqual({
      kind: 'unavailable',
      reason:
        'the state at seq 86 is not available: the stream begins at seq 90 and the oldest checkpoint is at seq 90; earlier entries were trimmed',
    });
  });

  it('reads a whole stream from seq 1 when no checkpoint fits', () => {
    expect(
      chooseBase([cp(90)], { firstEntrySeq: 1, lastEntrySeq: 100 }, { mode: 'state', atSeq: 50 }),
    ).toMatchObject({ kind: 'start', checkpoint: undefined, readFrom: 1 });
    expect(
      chooseBase(
        [],
        { firstEntrySeq: 1, lastEntrySeq: 100 },
        { mode: 'range', fromSeq: 1, what: 'x' },
      ),
    ).toMatchObject({ kind: 'start', checkpoint: undefined, readFrom: 1, note: undefined });
  });

  it('tells where a history begins when its earlier entries were trimmed', () => {
    expect(
      chooseBase(listed, trimmed, { mode: 'range', fromSeq: 1, what: 'history of user/1' }),
    ).toEqual({
      kind: 'start',
      checkpoint: cp(90),
      readFrom: 91,
      note: 'history of user/1 begins at seq 91 (checkpoint 90); earlier entries were trimmed',
    });
    // From a later seq: the newest checkpoint below it, no note.
    expect(chooseBase(listed, trimmed, { mode: 'range', fromSeq: 200, what: 'h' })).toMatchObject({
      checkpoint: { appliedSeq: 180 },
      readFrom: 181,
      note: undefined,
    });
    // No checkpoint left at all: from the stream's first entry.
    expect(chooseBase([], trimmed, { mode: 'range', fromSeq: 1, what: 'h' })).toMatchObject({
      checkpoint: undefined,
      readFrom: 90,
      note: 'h begins at seq 90; earlier entries were trimmed',
    });
  });

  it('starts from a named checkpoint, by seq or name, and refuses an unknown one', () => {
    expect(chooseBase(listed, trimmed, { mode: 'state', atSeq: 300, named: '180' })).toMatchObject({
      checkpoint: { appliedSeq: 180 },
    });
    expect(
      chooseBase(listed, trimmed, { mode: 'state', atSeq: 300, named: cp(90).name }),
    ).toMatchObject({ checkpoint: { appliedSeq: 90 } });
    expect(chooseBase(listed, trimmed, { mode: 'state', atSeq: 300, named: '100' })).toEqual({
      kind: 'unavailable',
      reason: 'no checkpoint 100: the checkpoints are at seqs 90, 180, 270',
    });
    expect(chooseBase(listed, trimmed, { mode: 'state', atSeq: 150, named: '180' })).toMatchObject({
      kind: 'unavailable',
    });
  });
});

describe('replay --file of an export that starts from a checkpoint', () => {
  let dir: string;
  const events: MetadataEvent[] = [
    { op: 'EPOCH', epoch: 3, nodeId: 'n1' },
    { op: 'MOUNT_SEGMENT', segmentId: 'seg', nodeId: 'a', size: 1 << 20 },
  ];
  for (let i = 0; i < 6; i += 1) {
    events.push({
      op: 'PUT_START',
      key: `k${i}`,
      size: 10,
      replicas: [
        { segmentId: 'seg', nodeId: 'a', offset: i * 10, length: 10, status: 'processing' },
      ],
    });
    events.push({ op: 'PUT_END', key: `k${i}` });
  }
  const entries = events.map((event, i) =>
    toEntry({ seq: i + 1, epoch: 3, ts: Date.UTC(2026, 0, 1) + i, event }),
  );
  const logged = entries.map(fromEntry);
  /** The export of a stream trimmed below seq 6: the checkpoint at 6, then entries 7.. */
  const S = 6;
  const atS = foldAll(emptyState(), logged.slice(0, S));
  const info = { ...cp(S), stateDigest: stateDigest(atS), epoch: 3, objectCount: atS.objectCount };
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-cpbase-'));
    file = join(dir, 'trimmed.ndjson');
    const lines = [...exportCheckpointLines(info, atS), ...entries.slice(S).map(exportEntryLine)];
    await writeFile(file, `${lines.join('\n')}\n`);
  });
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('folds the state at a seq after the checkpoint, as a fold from seq 1 does', async () => {
    for (const at of [S, S + 3, entries.length]) {
      const run = capture();
      expect(await runReplay({ file, at, json: true }, run), run.err).toBe(0);
      const expected = foldAll(emptyState(), logged.slice(0, at));
      expect(JSON.parse(run.out)).toMatchObject({
        seq: at,
        objectCount: expected.objectCount,
        digest: digestHex(stateDigest(expected)),
        checkpoint: info.name,
      });
    }
  });

  it('lists the history of a key with its records, from the checkpoint on', async () => {
    const run = capture();
    expect(await runReplay({ file, key: 'k4', json: true }, run), run.err).toBe(0);
    const lines = run.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; record: { size: number } | null });
    expect(lines.map((l) => l.seq)).toEqual([11, 12]);
    expect(lines[1]?.record?.size).toBe(10);
  });

  it('says the state before the checkpoint is not in the file (exit 3)', async () => {
    const run = capture();
    expect(await runReplay({ file, at: 3 }, run)).toBe(3);
    expect(run.err).toContain('the state at seq 3 is not in it: it begins at seq 7');
  });

  it('reports a changed byte of a checkpoint frame as corrupt (exit 1)', async () => {
    const [first, ...rest] = [...exportCheckpointLines(info, atS)];
    const value = JSON.parse(first ?? '') as { raw: string };
    const raw = Buffer.from(value.raw, 'base64');
    raw[raw.length - 8] = (raw[raw.length - 8] ?? 0) ^ 0x10;
    const bad = join(dir, 'bad-cp.ndjson');
    const lines = [
      JSON.stringify({ ...value, raw: raw.toString('base64') }),
      ...rest,
      ...entries.slice(S).map(exportEntryLine),
    ];
    await writeFile(bad, `${lines.join('\n')}\n`);
    const run = capture();
    expect(await runReplay({ file: bad, at: entries.length }, run)).toBe(1);
    expect(run.err).toContain(`checkpoint ${info.name}`);
  });
});
