// `understudy replay` and `understudy export` on a real cluster that trimmed its stream below its
// checkpoints (`checkpoint create` three times with --checkpoint-keep 2): the state at a seq after
// the oldest kept checkpoint, the history of a key and where it begins, a plain refusal for a seq
// that was trimmed, and an export that starts from the checkpoint and replays to the same digest.
// Before the fix every one of these failed ('the log starts at seq N: the state needs every entry
// from seq 1', 'the log ends at seq 0, before --at N').
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UnderstudyClient } from '../../src/client/client.ts';
import { digestHex, stateDigest } from '../../src/domain/log/checksum.ts';
import { foldAll } from '../../src/domain/fold/fold.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { LoggedEvent } from '../../src/domain/model/types.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import type { EtcdHandle, NatsServerHandle } from '../harness/index.ts';
import { startOneNode, stopAll } from '../harness/e2eCluster.ts';
import { runCli as cli } from '../harness/cli.ts';

const CLUSTER = 'replay-cp-e2e';

interface Summary {
  readonly seq: number;
  readonly digest: string;
  readonly objectCount: number;
  readonly checkpoint: string | null;
  readonly key?: { readonly record: { readonly size: number } | null };
}

describe('replay and export across checkpoints (real cluster, trimmed stream)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  let etcd: EtcdHandle;
  let nats: NatsServerHandle;
  let client: UnderstudyClient;
  let dir: string;
  /** The whole log, read before the stream was trimmed. */
  let log: LoggedEvent[];
  /** The seqs of the three checkpoints, oldest first. */
  const seqs: number[] = [];
  let live: string[];

  const digestAt = (seq: number): string =>
    digestHex(stateDigest(foldAll(emptyState(), log.slice(0, seq))));

  async function put(from: number, to: number, prefix = 'k'): Promise<void> {
    for (let i = from; i < to; i += 1) {
      await client.putStart(`${prefix}${i}`, 1024, 1);
      await client.putEnd(`${prefix}${i}`);
    }
  }

  const bySeq = new Map<number, LoggedEvent>();
  /** Each checkpoint trims the stream below the oldest kept: the log is read before each. */
  async function checkpoint(): Promise<number> {
    for (const l of await readLoggedEvents(nats.url, CLUSTER)) bySeq.set(l.seq, l);
    const run = await cli(['checkpoint', 'create', '--cluster', CLUSTER, '--etcd', etcd.endpoint]);
    expect(run.code, run.stderr).toBe(0);
    const seq = Number(/: seq (\d+),/.exec(run.stdout)?.[1]);
    expect(seq).toBeGreaterThan(0);
    return seq;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-replay-cp-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    ({ etcd, nats, client } = await startOneNode(cleanups, CLUSTER, {
      segments: [['seg', 's1']],
      segmentSize: 1 << 22,
      extraArgs: [
        '--checkpoint-interval-entries',
        '100000000',
        '--checkpoint-interval',
        '1000m',
        '--checkpoint-keep',
        '2',
      ],
    }));
    await put(0, 10);
    await client.putStart('user/1', 4096, 1);
    await client.putStart('user/2', 2048, 1);
    seqs.push(await checkpoint());
    await put(10, 20);
    await client.putEnd('user/1');
    seqs.push(await checkpoint());
    await put(20, 30);
    await client.putRevoke('user/2');
    await put(30, 32);
    seqs.push(await checkpoint()); // keeps two: the stream is trimmed below the second
    log = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    expect(log.map((l) => l.seq)).toEqual(log.map((_, i) => i + 1));
    live = ['--cluster', CLUSTER, '--nats', nats.url];
  }, 180_000);

  afterAll(() => stopAll(cleanups), 60_000);

  it('the stream was trimmed and one checkpoint removed', async () => {
    const list = await cli(['checkpoint', 'list', ...live, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { appliedSeq: number }[]).map((c) => c.appliedSeq)).toEqual([
      seqs[2],
      seqs[1],
    ]);
    const old = await cli(['replay', ...live, '--at', String(seqs[0])]);
    expect(old.code).toBe(3);
    expect(old.stderr).toContain(
      `the state at seq ${seqs[0]} is not available: the stream begins at seq`,
    );
    expect(old.stderr).toContain(
      `the oldest checkpoint is at seq ${seqs[1]}; earlier entries were trimmed`,
    );
  });

  it('checkpoint list and verify never create a bucket: a wrong --cluster or --group is refused, naming what exists', async () => {
    // Regression: list and verify created the bucket they were asked about, so `--group 0` on a
    // cluster of one group (or a mistyped --cluster) answered an empty list and left a bucket.
    const grouped = await cli(['checkpoint', 'list', ...live, '--group', '0']);
    expect(grouped.code).toBe(2);
    expect(grouped.stderr).toContain(`cluster ${CLUSTER} has one group: leave --group out`);
    const nats = live.slice(2);
    for (let attempt = 0; attempt < 2; attempt++) {
      const typo = await cli(['checkpoint', 'verify', '--cluster', 'no-such', ...nats]);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toContain(
        'there is no checkpoint bucket understudy_no-such on this NATS: no node of cluster no-such has run here',
      );
    }
  });

  it('replay --at a seq after a checkpoint, with --key: the state an independent fold has', async () => {
    const at = (seqs[1] ?? 0) + 5;
    const run = await cli(['replay', ...live, '--at', String(at), '--key', 'user/1', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as Summary;
    expect(summary).toMatchObject({ seq: at, digest: digestAt(at) });
    expect(summary.checkpoint).toMatch(new RegExp(`^cp\\.0*${seqs[1]}\\.n1$`));
    expect(summary.key?.record?.size).toBe(4096);
    const text = await cli(['replay', ...live, '--at', String(at)]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`state at seq ${at}`);
    expect(text.stderr).toContain(`folded from checkpoint`);
  });

  it('replay to the end starts from the newest checkpoint, or the one named', async () => {
    const end = await cli(['replay', ...live, '--json']);
    expect(end.code, end.stderr).toBe(0);
    expect(JSON.parse(end.stdout)).toMatchObject({
      seq: log.length,
      digest: digestAt(log.length),
      checkpoint: expect.stringMatching(new RegExp(`^cp\\.0*${seqs[2]}\\.`)) as unknown,
    });
    const named = await cli(['replay', ...live, '--json', '--checkpoint', String(seqs[1])]);
    expect(named.code, named.stderr).toBe(0);
    expect(JSON.parse(named.stdout)).toMatchObject({
      seq: log.length,
      digest: digestAt(log.length),
    });
    const unknown = await cli(['replay', ...live, '--checkpoint', '1']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain(
      `no checkpoint 1: the checkpoints are at seqs ${seqs[1]}, ${seqs[2]}`,
    );
  });

  it('the history of a key says where it begins, and lists what is left with its records', async () => {
    const run = await cli(['replay', ...live, '--key', 'user/2', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      `history of user/2 begins at seq ${(seqs[1] ?? 0) + 1} (checkpoint ${seqs[1]}); earlier entries were trimmed`,
    );
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; op: string; record?: unknown });
    expect(lines.map((l) => l.op)).toEqual(['PUT_REVOKE']);
    expect(lines[0]?.record).toBeNull();
  });

  it('export starts from the checkpoint; replay --file of it has the same state at every seq asked', async () => {
    const file = join(dir, 'trimmed.ndjson');
    const run = await cli(['export', ...live, '--out', file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(
      `the export begins at seq ${(seqs[1] ?? 0) + 1} (checkpoint ${seqs[1]}); earlier entries were trimmed`,
    );
    expect(run.stderr).toContain(`(seqs ${(seqs[1] ?? 0) + 1}..${log.length}) after checkpoint`);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(JSON.parse(lines[1] ?? '')).toMatchObject({ checkpoint: { appliedSeq: seqs[1] } });
    for (const at of [seqs[1] ?? 0, (seqs[2] ?? 0) - 1, log.length]) {
      const replay = await cli(['replay', '--file', file, '--at', String(at), '--json']);
      expect(replay.code, replay.stderr).toBe(0);
      expect(JSON.parse(replay.stdout)).toMatchObject({ seq: at, digest: digestAt(at) });
    }
  });
});
