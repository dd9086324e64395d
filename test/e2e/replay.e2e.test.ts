// `understudy export` and `understudy replay` against a real cluster: etcd, nats-server and a
// node process from the harness, a few client writes, then the real CLI as child processes
// (and in-process for the cheaper cases): export, replay --key, replay --at, and replay of the
// export with one corrupted entry (stops with its seq; --skip-bad goes on).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import { opLogSubject } from '../../src/adapters/nats/stream.ts';
import { runExport } from '../../src/cli/exportCommand.ts';
import { runReplay } from '../../src/cli/replayCommand.ts';
import type { StateSummary } from '../../src/tools/log/stateSummary.ts';
import { type UnderstudyClient } from '../../src/client/client.ts';
import { digestHex, stateDigest } from '../../src/domain/log/checksum.ts';
import { foldAll } from '../../src/domain/fold/fold.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { LoggedEvent, MetadataEvent } from '../../src/domain/model/types.ts';
import type { NatsServerHandle } from '../harness/index.ts';
import { captureOutput as capture, runCli as cli } from '../harness/cli.ts';
import { startOneNode, stopAll } from '../harness/e2eCluster.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';

const CLUSTER = 'replay-e2e';

/** The export line of `seq` with one byte of its raw frame's payload flipped. */
function corruptPayload(lines: string[], seq: number): string[] {
  return lines.map((line) => {
    const value = JSON.parse(line) as Record<string, unknown>;
    if (value['seq'] !== seq) return line;
    const raw = Buffer.from(value['raw'] as string, 'base64');
    // The payload (JSON event) sits just before the 4-byte frame CRC.
    const at = raw.length - 10;
    raw[at] = (raw[at] ?? 0) ^ 0x01;
    return JSON.stringify({ ...value, raw: raw.toString('base64') });
  });
}

describe('understudy export / replay on a real cluster', () => {
  const cleanups: Array<() => Promise<void>> = [];
  let nats: NatsServerHandle;
  let client: UnderstudyClient;
  let dir: string;
  let log: LoggedEvent[];
  let exportFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-replay-e2e-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    ({ nats, client } = await startOneNode(cleanups, CLUSTER, {
      segments: [
        ['s1-seg', 's1'],
        ['s2-seg', 's2'],
      ],
      segmentSize: 1 << 20,
    }));
    // (No remove: a new primary treats every object as read-leased for one lease TTL.)
    await client.putStart('user/1', 4096, 2);
    await client.putEnd('user/1');
    await client.putStart('user/2', 4096, 2);
    await client.putStart('user/3', 4096, 2);
    await client.putEnd('user/3');
    await client.putRevoke('user/2');
    log = await readLoggedEvents(nats.url, CLUSTER);
    exportFile = join(dir, 'export.ndjson');
  }, 120_000);

  afterAll(() => stopAll(cleanups), 60_000);

  it('exports the whole log as NDJSON (real CLI)', async () => {
    const run = await cli([
      'export',
      '--cluster',
      CLUSTER,
      '--nats',
      nats.url,
      '--out',
      exportFile,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`${log.length} entries (seqs 1..${log.length})`);
    const lines = (await readFile(exportFile, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(log.length + 1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      format: 'understudy-oplog',
      cluster: CLUSTER,
    });
    const seqs = lines.slice(1).map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs).toEqual(log.map((l) => l.seq));
  });

  it('exports a seq range in-process, and says when the stream does not exist', async () => {
    const out = capture();
    const range = join(dir, 'range.ndjson');
    expect(
      await runExport({ cluster: CLUSTER, nats: nats.url, from: 2, to: 4, out: range }, out),
    ).toBe(0);
    expect(out.err).toContain('3 entries (seqs 2..4)');
    const rangeLines = (await readFile(range, 'utf8')).trim().split('\n');
    expect(rangeLines.slice(1).map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([
      2, 3, 4,
    ]);
    const toStdout = capture();
    expect(await runExport({ cluster: CLUSTER, nats: nats.url, from: 3, to: 3 }, toStdout)).toBe(0);
    expect(toStdout.out.trim().split('\n')).toHaveLength(2);
    const unwritable = capture();
    const badOut = join(dir, 'no-such-dir', 'x.ndjson');
    expect(await runExport({ cluster: CLUSTER, nats: nats.url, out: badOut }, unwritable)).toBe(4);
    expect(unwritable.err).toContain('cannot write');
    const missing = capture();
    expect(await runExport({ cluster: 'no-such-cluster', nats: nats.url }, missing)).toBe(3);
    expect(missing.err).toContain('no such stream');
    expect(missing.out).toBe('');
  });

  it('lists the history of a key from the live stream (real CLI)', async () => {
    const run = await cli(['replay', '--cluster', CLUSTER, '--nats', nats.url, '--key', 'user/2']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('  ')[3])).toEqual(['PUT_START', 'PUT_REVOKE']);
    const expected = log.filter((l) => 'key' in l.event && l.event.key === 'user/2');
    expect(lines.map((l) => Number(/^seq (\d+)/.exec(l)?.[1]))).toEqual(expected.map((l) => l.seq));
    expect(lines[0]).toMatch(
      /^seq \d+ {2}epoch \d+ {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}PUT_START {2}\{/,
    );
  });

  it('summarises the state at a seq, live and from the export, as an independent fold does', async () => {
    const revokeSeq = log.find((l) => l.event.op === 'PUT_REVOKE')?.seq ?? 0;
    const at = revokeSeq - 1;
    const live = capture();
    expect(
      await runReplay({ cluster: CLUSTER, nats: nats.url, at, key: 'user/2', json: true }, live),
      live.err,
    ).toBe(0);
    const summary = JSON.parse(live.out) as StateSummary & {
      key: { key: string; record: { size: number } | null };
    };
    const expected = foldAll(emptyState(), log.slice(0, at));
    expect(summary).toMatchObject({
      seq: at,
      objectCount: 3,
      epoch: expected.epoch,
      epochNodeId: 'n1',
      digest: digestHex(stateDigest(expected)),
    });
    expect(summary.segments.map((s) => [s.id, s.used, s.size])).toEqual([
      ['s1-seg', 3 * 4096, 1 << 20],
      ['s2-seg', 3 * 4096, 1 << 20],
    ]);
    expect(summary.key.record?.size).toBe(4096);

    const fromFile = capture();
    expect(await runReplay({ file: exportFile, at, key: 'user/2', json: true }, fromFile)).toBe(0);
    expect(JSON.parse(fromFile.out)).toEqual(summary);

    const text = capture();
    expect(await runReplay({ file: exportFile, key: 'user/2' }, text)).toBe(0);
    expect(text.out.trim().split('\n')).toHaveLength(2);
  });

  it('stops at a corrupted entry with its seq, and goes on with --skip-bad (real CLI)', async () => {
    const lines = (await readFile(exportFile, 'utf8')).trim().split('\n');
    const badSeq = log.find((l) => l.event.op === 'PUT_END')?.seq ?? 0;
    const badFile = join(dir, 'corrupt.ndjson');
    await writeFile(badFile, `${corruptPayload(lines, badSeq).join('\n')}\n`);

    const stopped = await cli(['replay', '--file', badFile, '--at', String(log.length)]);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain(`corrupt entry at seq ${badSeq} (line ${badSeq + 1})`);
    expect(stopped.stdout).toBe('');

    const skipped = await cli(['replay', '--file', badFile, '--skip-bad', '--key', 'user/3']);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toContain(`seq ${badSeq}`);
    expect(skipped.stderr).toContain('skipped 1 bad entries');
    expect(
      skipped.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('  ')[3]),
    ).toEqual(['PUT_START', 'PUT_END']);
  });

  it('reports a corrupt message in the live stream by stream message, and skips it', async () => {
    // A separate cluster's stream on the same server: three entries, a garbage message, two more.
    const cluster = 'replay-corrupt';
    const nc = await connect({ servers: nats.url });
    try {
      const opLog = await createNatsOpLog({ nc, cluster });
      const events: MetadataEvent[] = [
        { op: 'EPOCH', epoch: 1, nodeId: 'x' },
        { op: 'MOUNT_SEGMENT', segmentId: 'seg', nodeId: 'a', size: 1 << 20 },
        {
          op: 'PUT_START',
          key: 'k',
          size: 10,
          replicas: [
            { segmentId: 'seg', nodeId: 'a', offset: 0, length: 10, status: 'processing' },
          ],
        },
        { op: 'PUT_END', key: 'k' },
        { op: 'REMOVE', key: 'k' },
      ];
      const entries = events.map((event, i) =>
        toEntry({ seq: i + 1, epoch: 1, ts: Date.now(), event }),
      );
      const first = opLog.openWriter({ expectedLastStreamSeq: 0 });
      for (const entry of entries.slice(0, 3)) await first.append([entry]);
      await first.close();
      await jetstream(nc).publish(opLogSubject(cluster), new TextEncoder().encode('garbage'));
      const second = opLog.openWriter({ expectedLastStreamSeq: 4 });
      await second.append(entries.slice(3, 4));
      await second.append(entries.slice(4));
      await second.close();
      await opLog.close();
    } finally {
      await nc.close();
    }

    const stopped = capture();
    expect(await runReplay({ cluster, nats: nats.url, at: 5 }, stopped)).toBe(1);
    expect(stopped.err).toContain('entry on stream message 4 (seq unreadable)');
    const skipped = capture();
    expect(await runReplay({ cluster, nats: nats.url, key: 'k', skipBad: true }, skipped)).toBe(0);
    expect(
      skipped.out
        .trim()
        .split('\n')
        .map((l) => l.split('  ')[3]),
    ).toEqual(['PUT_START', 'PUT_END', 'REMOVE']);
    const exported = capture();
    expect(await runExport({ cluster, nats: nats.url, out: join(dir, 'c.ndjson') }, exported)).toBe(
      1,
    );
    expect(exported.err).toContain('stopped at a corrupt message');
  });

  it('documents exit codes in --help', async () => {
    const run = await cli(['replay', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Exit codes:');
    expect(run.stdout).toContain('--skip-bad');
  });
});
