// The one log reader (src/tools/log/logReader.ts) through each entry point, on one real stream
// signed under an OpLog key that also holds a garbage message, an entry stamped with a foreign
// epoch and an unsigned message: `understudy export`, `understudy replay`, `readLog` (over the
// stream as export reads it, and over the OpLog port) and `readLoggedEvents` admit the same
// entries and pass over the same three, with the same words.
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchSignature } from '../../src/adapters/nats/batchSignature.ts';
import { createNatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import { runExport } from '../../src/cli/exportCommand.ts';
import { runReplay } from '../../src/cli/replayCommand.ts';
import { captureOutput as capture } from '../harness/cli.ts';
import { oplogSigningKey } from '../../src/config/credentials.ts';
import { foldAll } from '../../src/domain/fold/fold.ts';
import { digestHex, stateDigest } from '../../src/domain/log/checksum.ts';
import { decodeBatch, encodeBatch } from '../../src/domain/log/codec.ts';
import { fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { MetadataEvent } from '../../src/domain/model/types.ts';
import { readLoggedEvents } from '../../src/tools/localCluster/readLoggedEvents.ts';
import { describePosition } from '../../src/tools/log/exportFormat.ts';
import { readLog, type SkippedItem } from '../../src/tools/log/logReader.ts';
import { natsLogSource } from '../../src/tools/log/logSource.ts';
import { opLogSource } from '../../src/tools/log/opLogSource.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
const SEG = 1 << 20;
const replicas = (offset: number) => [
  { segmentId: 'a-seg', nodeId: 'a', offset, length: 100, status: 'processing' as const },
];

/** The log: two terms (epochs 3 and 4), written by fenced writers in two appends. */
const FIRST: [number, MetadataEvent][] = [
  [3, { op: 'EPOCH', epoch: 3, nodeId: 'n1' }],
  [3, { op: 'MOUNT_SEGMENT', segmentId: 'a-seg', nodeId: 'a', size: SEG }],
  [3, { op: 'PUT_START', key: 'k1', size: 100, replicas: replicas(0) }],
];
const SECOND: [number, MetadataEvent][] = [
  [3, { op: 'PUT_END', key: 'k1' }],
  [4, { op: 'EPOCH', epoch: 4, nodeId: 'n2' }],
  [4, { op: 'PUT_START', key: 'k2', size: 100, replicas: replicas(100) }],
];
const entriesOf = (events: [number, MetadataEvent][], from: number) =>
  events.map(([epoch, event], i) => toEntry({ seq: from + i, epoch, ts: T0 + from + i, event }));

/** Signed bytes that are no batch, and what the decoder says of them. */
const GARBAGE = new TextEncoder().encode('not a batch of entries');
const GARBAGE_WHY = ((): string => {
  try {
    decodeBatch(GARBAGE);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the garbage decodes');
})();

describe('one log reader: every entry point admits and skips alike', () => {
  let nats: NatsServerHandle;
  let dir: string;
  let keyFile: string;
  let key: Uint8Array;
  const cluster = `reader${randomUUID().slice(0, 8)}`;
  /** The stream messages of the garbage, the foreign entry and the unsigned one. */
  const at = { garbage: 0, foreign: 0, unsigned: 0 };

  beforeAll(async () => {
    nats = await startNats();
    dir = await mkdtemp(join(tmpdir(), 'understudy-reader-'));
    keyFile = join(dir, 'oplog.key');
    await writeFile(keyFile, 'the key of the log reader test!!\n');
    key = oplogSigningKey({ oplogKeyFile: keyFile })!;
    const nc = await connect({ servers: nats.url });
    try {
      const log = await createNatsOpLog({ nc, cluster, signingKey: key });
      const first = await log.openWriter({ expectedLastStreamSeq: 0 }).append(entriesOf(FIRST, 1));
      const js = jetstream(nc);
      const signature = new BatchSignature(key);
      const signed = async (bytes: Uint8Array) =>
        (await js.publish(log.subject, bytes, { headers: signature.headersFor(bytes)! })).seq;
      // Signed bytes that are no batch; a well-formed signed entry of an epoch nobody was
      // elected at (seq 4, before the real seq 4); an unsigned one of the current epoch.
      at.garbage = await signed(GARBAGE);
      at.foreign = await signed(
        encodeBatch([toEntry({ seq: 4, epoch: 1003, ts: T0, event: { op: 'REMOVE', key: 'k1' } })]),
      );
      at.unsigned = (
        await js.publish(
          log.subject,
          encodeBatch([toEntry({ seq: 4, epoch: 3, ts: T0, event: { op: 'REMOVE', key: 'k1' } })]),
        )
      ).seq;
      expect(at.garbage).toBe(first.streamSeq + 1);
      await log.openWriter({ expectedLastStreamSeq: at.unsigned }).append(entriesOf(SECOND, 4));
      await log.close();
    } finally {
      await nc.close();
    }
  }, 60_000);

  afterAll(async () => {
    await nats?.[Symbol.asyncDispose]();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** The entries of the log as written, and what every reader must say it passed over. */
  const ADMITTED = [1, 2, 3, 4, 5, 6];
  const skippedReport = (): string[] => [
    `entry on stream message ${at.garbage} (seq unreadable): stream message: ${GARBAGE_WHY}`,
    `entry at seq 4 (stream message ${at.foreign}): foreign entry (no elected primary's): stamped with epoch 1003, not the current epoch 3`,
    `entry on stream message ${at.unsigned} (seq unreadable): stream message: signature: the batch is not signed`,
  ];
  const messagesOf = (items: readonly SkippedItem[]): string[] => items.map((i) => i.error.message);
  /** The stream as `understudy export` reads it. */
  const streamSource = () =>
    natsLogSource({ cluster, servers: [nats.url], security: {}, signingKey: key });

  it('readLog over the stream and over the OpLog port, and readLoggedEvents, agree', async () => {
    const viaStream: SkippedItem[] = [];
    const source = await streamSource();
    const fromStream = await readLog(source, { onSkipped: (item) => viaStream.push(item) });
    await source.close();
    expect(fromStream.map((e) => e.seq)).toEqual(ADMITTED);
    expect(messagesOf(viaStream)).toEqual(skippedReport());

    const viaPort: SkippedItem[] = [];
    const nc = await connect({ servers: nats.url });
    try {
      const log = opLogSource(await createNatsOpLog({ nc, cluster, signingKey: key }));
      const fromPort = await readLog(log, { onSkipped: (item) => viaPort.push(item) });
      await log.close();
      expect(fromPort).toEqual(fromStream);
      expect(messagesOf(viaPort)).toEqual(skippedReport());
    } finally {
      await nc.close();
    }

    // Asked of an election check instead of judged by the log: the same (both fences are real).
    const asked: string[] = [];
    const elected = await streamSource();
    const withCheck = await readLog(elected, {
      elected: (claim) => {
        asked.push(`${claim.epoch}:${claim.nodeId}`);
        return Promise.resolve(true);
      },
    });
    await elected.close();
    expect(withCheck).toEqual(fromStream);
    expect(asked).toEqual(['3:n1', '4:n2']);

    const viaEvents: SkippedItem[] = [];
    const events = await readLoggedEvents(nats.url, cluster, {
      signingKey: key,
      onSkipped: (item) => viaEvents.push(item),
    });
    expect(events).toEqual(fromStream.map(fromEntry));
    expect(messagesOf(viaEvents)).toEqual(skippedReport());
  });

  it('understudy export --skip-bad writes the same entries and names the same three', async () => {
    const out = capture();
    const file = join(dir, 'export.ndjson');
    const flags = { cluster, nats: nats.url, oplogKeyFile: keyFile, out: file };
    expect(await runExport({ ...flags, skipBad: true }, out), out.err).toBe(0);
    const lines = (await readFile(file, 'utf8')).trim().split('\n').slice(1);
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(ADMITTED);
    const told = out.err.trim().split('\n');
    expect(told.at(-1)).toContain('6 entries (seqs 1..6)');
    expect(told.at(-1)).toContain('2 corrupt messages skipped; 1 foreign entries skipped');
    expect(told.slice(0, -1).map((l) => l.replace(/^understudy export: (corrupt )?/, ''))).toEqual(
      skippedReport(),
    );
    // Without --skip-bad it stops at the first of them.
    const stopped = capture();
    expect(await runExport(flags, stopped)).toBe(1);
    expect(stopped.err).toContain(`corrupt entry on stream message ${at.garbage}`);
  });

  it('understudy replay --skip-bad folds the same entries and skips the same three', async () => {
    const out = capture();
    const flags = { cluster, nats: nats.url, oplogKeyFile: keyFile, skipBad: true, json: true };
    expect(await runReplay(flags, out), out.err).toBe(0);
    const result = JSON.parse(out.out) as {
      seq: number;
      digest: string;
      skipped: { seq?: number; streamSeq?: number; reason: string }[];
    };
    const events = await readLoggedEvents(nats.url, cluster, { signingKey: key });
    expect(result.seq).toBe(6);
    expect(result.digest).toBe(digestHex(stateDigest(foldAll(emptyState(), events))));
    expect(result.skipped.map((s) => `${describePosition(s)}: ${s.reason}`)).toEqual(
      skippedReport(),
    );
  });
});
