// Checkpoints in a JetStream object store bucket against a real nats-server: staged then
// published, read back whole, and never listed half written, even when the writer is killed.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { getSha256Backend } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkpointBucketName,
  NatsCheckpointStore,
} from '../../src/adapters/nats/natsCheckpointStore.ts';
import { checkpointFrames, readCheckpoint } from '../../src/domain/snapshot/checkpoint.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { CheckpointMissingError } from '../../src/ports/checkpointStore.ts';
import { foldHistory } from '../fixtures/stateHistory.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // keep cleaning up
    }
  }
});

async function setup(): Promise<{
  nats: NatsServerHandle;
  nc: NatsConnection;
  cluster: string;
  store: NatsCheckpointStore;
}> {
  const nats = await startNats();
  cleanups.push(async () => {
    await nats[Symbol.asyncDispose]();
  });
  const nc = await connect({ servers: nats.url });
  cleanups.push(() => nc.close());
  const cluster = `c${randomUUID().slice(0, 8)}`;
  const store = await NatsCheckpointStore.open({ nc, cluster });
  return { nats, nc, cluster, store };
}

async function collect(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const piece of pieces) out.push(piece);
  return out;
}

const state = foldHistory(
  Array.from({ length: 30 }, (_, i) => ({
    command: { type: 'putStart' as const, key: `key-${i}`, size: 100, replicaNum: 2 },
    client: i % 3,
  })),
);
const description = {
  appliedSeq: state.appliedSeq,
  lastStreamSeq: 17,
  stateDigest: stateDigest(state),
  epoch: state.epoch,
  objectCount: state.objectCount,
  sessionCount: state.sessionCount,
  writer: 'node-a',
};

describe('NatsCheckpointStore', () => {
  it('members opening a new bucket at once each open it (on their own connections), and it is one bucket', async () => {
    const { nats } = await setup();
    for (let round = 0; round < 5; round++) {
      const cluster = `race${round}${randomUUID().slice(0, 6)}`;
      const ncs = await Promise.all(
        Array.from({ length: 6 }, () => connect({ servers: nats.url })),
      );
      cleanups.push(() => Promise.all(ncs.map((nc) => nc.close())));
      const stores = await Promise.all(ncs.map((nc) => NatsCheckpointStore.open({ nc, cluster })));
      expect(new Set(stores.map((s) => s.bucket)).size).toBe(1);
      await stores[0]!.write(checkpointFrames(state)).then((staged) => staged.discard());
    }
  });

  it('lists a checkpoint only once published, and reads back the state it holds', async () => {
    const { store } = await setup();
    const staged = await store.write(checkpointFrames(state, 7));
    expect(await store.list()).toEqual([]);
    const back = readCheckpoint(await collect(staged.read()), description);
    expect(stateDigest(back)).toBe(description.stateDigest);
    const published = await staged.publish(description);
    expect(published).toMatchObject({
      ...description,
      name: `cp.${String(state.appliedSeq).padStart(16, '0')}.node-a`,
    });
    expect(published.bytes).toBeGreaterThan(0);
    expect(published.createdAt).toBeGreaterThan(Date.now() - 60_000);
    expect(await store.list()).toEqual([published]);
    const read = readCheckpoint(await collect(store.read(published.name)), description);
    expect(stateDigest(read)).toBe(description.stateDigest);
    expect(read.sessionCount).toBe(3);
  });

  // The object store's own get() reads through an ordered consumer, which on nats-server 2.9
  // once stopped delivering for good at 1M objects (a cold start and a writer's read-back that
  // never ended). Reads go chunk by chunk with direct gets: every byte in order, no consumer.
  it('reads a checkpoint of many chunks back byte for byte, without a consumer on the bucket', async () => {
    const { nc, cluster, store } = await setup();
    const frames = Array.from({ length: 40 }, (_, i) =>
      Uint8Array.from({ length: 50_000 + i }, (_, j) => (i * 31 + j) % 251),
    );
    const expected = Buffer.concat(frames);
    const jsm = await jetstreamManager(nc);
    const stream = `OBJ_${checkpointBucketName(cluster)}`;
    const expectReadBack = async (pieces: AsyncIterable<Uint8Array>): Promise<void> => {
      const read = await collect(pieces);
      expect(read.length).toBeGreaterThan(10); // 2 MB in 128 KiB chunks
      expect(Buffer.concat(read).equals(expected)).toBe(true);
      expect(await jsm.consumers.list(stream).next()).toEqual([]);
    };
    const staged = await store.write(frames);
    await expectReadBack(staged.read());
    const published = await staged.publish(description);
    expect(published.bytes).toBe(expected.length);
    await expectReadBack(store.read(published.name));
  });

  // Regression (issue 27): the object store's default pure-JS SHA-256 of every chunk it wrote
  // cost a writing standby ~70 ms of its main loop per MB (0.7 s at 300k objects, 3 s at 1M).
  it('hashes the chunks it writes with node:crypto, not the pure-JS SHA-256', async () => {
    const { store } = await setup();
    expect(getSha256Backend()).toBe('native');
    const staged = await store.write(checkpointFrames(state, 7));
    const published = await staged.publish(description);
    const read = readCheckpoint(await collect(store.read(published.name)), description);
    expect(stateDigest(read)).toBe(description.stateDigest);
  });

  it('lists newest first, forgets discarded and removed ones', async () => {
    const { store } = await setup();
    const older = await (
      await store.write([new Uint8Array(3)])
    ).publish({ ...description, appliedSeq: 9 });
    const newer = await (await store.write([new Uint8Array(3)])).publish(description);
    const dropped = await store.write([new Uint8Array(3)]);
    await dropped.discard();
    expect((await store.list()).map((c) => c.name)).toEqual([newer.name, older.name]);
    await store.remove(older.name);
    expect((await store.list()).map((c) => c.name)).toEqual([newer.name]);
    await expect(collect(store.read(older.name))).rejects.toBeInstanceOf(CheckpointMissingError);
  });

  it('rebase changes only where the stream continues a checkpoint: its bytes and the rest stay', async () => {
    const { store } = await setup();
    const published = await (await store.write(checkpointFrames(state, 7))).publish(description);
    const rebased = await store.rebase(published.name, 5);
    expect(rebased).toEqual({ ...published, lastStreamSeq: 5 });
    expect(await store.list()).toEqual([rebased]);
    const read = readCheckpoint(await collect(store.read(published.name)), description);
    expect(stateDigest(read)).toBe(description.stateDigest);
    await expect(store.rebase('cp.nope', 5)).rejects.toBeInstanceOf(CheckpointMissingError);
  });

  it('a writer killed midway leaves nothing listed, and its chunks are removed as leftovers', async () => {
    const { nats, nc, cluster, store } = await setup();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/checkpointWriter.ts'],
      {
        env: { ...process.env, NATS_URL: nats.url, CLUSTER: cluster },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    cleanups.push(() => {
      child.kill('SIGKILL');
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    for await (const line of createInterface({ input: child.stdout })) {
      if (line.includes('"midway"')) break;
    }
    child.kill('SIGKILL');
    await exited;
    expect(await store.list()).toEqual([]);
    const jsm = await jetstreamManager(nc);
    const stream = `OBJ_${checkpointBucketName(cluster)}`;
    const before = await jsm.streams.info(stream);
    expect(before.state.messages).toBeGreaterThanOrEqual(7); // the chunks it stored
    expect(await store.removeLeftovers(0)).toBe(1);
    expect((await jsm.streams.info(stream)).state.messages).toBe(0);
    expect(await store.list()).toEqual([]);
  }, 60_000);
});
