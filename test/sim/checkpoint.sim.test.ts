// Durable restarts over the memory adapters on a simulated clock: checkpoints written by a
// standby, the stream trimmed below them, whole-cluster crashes and restarts from them, a
// corrupt newest checkpoint, a node that fails closed when nothing reaches back, and a stream
// that lost its tail past the newest checkpoint.
import { describe, expect, it } from 'vitest';
import { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import { MemoryCheckpointStore } from '../../src/adapters/memory/memoryCheckpointStore.ts';
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { MemoryLogStore } from '../../src/adapters/memory/memoryLogStore.ts';
import { createMemoryOpLog } from '../../src/adapters/memory/memoryOpLog.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { decodeJson, encodeJson } from '../../src/api/wire.ts';
import { type UnderstudyClient } from '../../src/client/client.ts';
import { createClient } from '../../src/client/nats.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import type { Elector } from '../../src/ports/elector.ts';
import { CHECKPOINT_READ_STALL_MS } from '../../src/node/checkpoints/loadCheckpoint.ts';
import { acceptTailLoss } from '../../src/node/streamTail.ts';
import { readMetadataCheckpoint } from '../../src/node/metadataDomain.ts';
import { NodeRuntime, type NodeRuntimeConfig } from '../../src/node/nodeRuntime.ts';

const TTL = 2000;
const CLUSTER = 'sim';

interface LogLine {
  /** The simulated wall clock when it was logged. */
  readonly at: number;
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** The shared, durable part of a cluster (stream, checkpoints, etcd) and its node processes. */
class World {
  readonly clock = new SimClock(1_000_000);
  readonly coord = new MemoryCoordinator(this.clock);
  readonly log = new MemoryLogStore();
  readonly checkpoints = new MemoryCheckpointStore(this.clock);
  readonly bus = new MemoryApiBus({ clock: this.clock });
  readonly lines: LogLine[] = [];
  nodes: { runtime: NodeRuntime; elector: Elector }[] = [];

  start(config: Partial<NodeRuntimeConfig> = {}, ids = ['n1', 'n2', 'n3']): void {
    this.nodes = ids.map((nodeId) => {
      const elector = createMemoryElector(this.coord, { nodeId, ttlMs: TTL, clock: this.clock });
      const line =
        (level: string) =>
        (fields: object, msg: string): void => {
          this.lines.push({
            at: this.clock.wallNow(),
            level,
            fields: { node: nodeId, ...fields },
            msg,
          });
        };
      const runtime = new NodeRuntime({
        nodeId,
        address: `sim://${nodeId}`,
        opLog: createMemoryOpLog(this.log, { nodeId, clock: this.clock, timeoutMs: 1000 }),
        elector,
        apiServer: this.bus.serverTransport(CLUSTER),
        checkpoints: this.checkpoints,
        clock: this.clock,
        logger: { info: line('info'), warn: line('warn'), error: line('error') },
        config: { leaseTtlMs: TTL, checkpointCheckMs: 500, ...config },
      }).start();
      return { runtime, elector };
    });
  }

  /** Every node dies at once (kill -9): machines, checkpointers and keep-alives stop. */
  async crashAll(): Promise<void> {
    for (const { runtime, elector } of this.nodes) {
      runtime.actor.stop();
      await runtime.checkpointer?.stop();
      await elector.close();
    }
    this.nodes = [];
  }

  async run(ms: number, step = 10): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(step);
      await new Promise((r) => setImmediate(r));
    }
  }

  async settle<T>(promise: Promise<T>, limitMs = 60_000): Promise<T> {
    let done = false;
    const watched = promise.finally(() => {
      done = true;
    });
    for (let t = 0; !done && t < limitMs; t += 10) await this.run(10);
    return watched;
  }

  async until(what: string, condition: () => boolean, limitMs = 30_000): Promise<void> {
    for (let t = 0; !condition(); t += 50) {
      if (t > limitMs) throw new Error(`timed out waiting for ${what}`);
      await this.run(50);
    }
  }

  primaries(): NodeRuntime[] {
    return this.nodes.map((n) => n.runtime).filter((r) => r.serving);
  }

  client(sessionId?: string): Promise<UnderstudyClient> {
    return createClient({
      cluster: CLUSTER,
      transport: this.bus.clientTransport(CLUSTER),
      clock: this.clock,
      requestTimeoutMs: 500,
      deadlineMs: 30_000,
      random: () => 0.5,
      ...(sessionId === undefined ? {} : { sessionId }),
    });
  }

  /** Sends one write as a client retrying request `requestNo` of `sessionId` would. */
  async rawWrite(op: string, body: Record<string, unknown>): Promise<unknown> {
    const transport = this.bus.clientTransport(CLUSTER);
    return decodeJson(await this.settle(transport.request(op, encodeJson(body), 1000)));
  }
}

const SESSION = 'c0ffee'.repeat(5) + 'ab';

async function writeSome(w: World, api: UnderstudyClient, from: number, to: number) {
  for (let i = from; i < to; i++) await w.settle(api.putStart(`key-${i}`, 100, 1));
}

describe('durable restarts (memory adapters, simulated clock)', () => {
  it('restarts the whole cluster from a checkpoint after the stream was trimmed: every write there, retries answered as before', async () => {
    const w = new World();
    w.start({ checkpointIntervalEntries: 20, checkpointKeep: 2 });
    await w.until('a primary', () => w.primaries().length === 1);
    const api = await w.client();
    await w.settle(api.mountSegment('seg-a', 'sn-a', 1 << 24));
    await w.settle(api.mountSegment('seg-b', 'sn-b', 1 << 24));
    // A putStart whose answer the client never saw: it will retry after the restart.
    const retried = {
      key: 'retried',
      size: 100,
      replicaNum: 2,
      session: { id: SESSION, requestNo: 1, oldestPending: 1 },
    };
    const original = await w.rawWrite('putStart', retried);
    expect(original).toMatchObject({ ok: true, result: { key: 'retried' } });
    for (let from = 0; from < 75; from += 25) {
      await writeSome(w, api, from, from + 25);
      await w.run(1000);
    }
    await w.until('the stream trimmed', () => w.log.bounds().firstSeq > 1);
    const primary = w.primaries()[0]!;
    const writers = new Set((await w.checkpoints.list()).map((c) => c.writer));
    // A caught-up standby writes them, not the primary.
    expect(writers.has(primary.status().nodeId)).toBe(false);
    expect((await w.checkpoints.list()).length).toBeLessThanOrEqual(2);
    // Its entry is no longer in the stream: only a checkpoint's session table has it.
    const retriedSeq = (original as { result: { seq?: number } }).result.seq;
    expect(w.log.bounds().firstSeq).toBeGreaterThan(retriedSeq ?? 0);
    const digest = stateDigest(primary.store.state);
    const appliedSeq = primary.store.appliedSeq;

    await w.crashAll();
    await w.run(TTL + 500);
    w.start({ checkpointIntervalEntries: 20, checkpointKeep: 2 });
    await w.until('a primary after restart', () => w.primaries().length === 1);
    await w.until('every node at the old end', () =>
      w.nodes.every((n) => n.runtime.store.appliedSeq > appliedSeq),
    );
    for (const { runtime } of w.nodes) {
      expect(runtime.checkpointStats.loadedFrom).toMatch(/^cp\./);
      expect(runtime.status().failClosed).toBeUndefined();
    }
    const after = await w.client();
    for (let i = 0; i < 75; i++)
      expect((await w.settle(after.get(`key-${i}`))).key).toBe(`key-${i}`);
    // The retried putStart (its answer was lost in the crash) gets its original result, and
    // nothing is applied twice.
    const before = w.nodes[0]!.runtime.store.appliedSeq;
    const retry = await w.rawWrite('putStart', retried);
    expect(retry).toEqual(original);
    await w.run(500);
    expect(w.nodes[0]!.runtime.store.appliedSeq).toBe(before);
    // Digests: the state at the old end folds on equally everywhere.
    await w.run(1000);
    const digests = new Set(w.nodes.map((n) => stateDigest(n.runtime.store.state)));
    expect(digests.size).toBe(1);
    expect(digest).not.toBe(0);
  });

  it("nodes restarted right after kill -9 load their checkpoint while the dead processes' id leases run out, not after", async () => {
    // Seen in the coldstart bench: of a cold start from a checkpoint after kill -9, ~3 s went
    // to waiting for the dead process's id lease, and only then was the checkpoint read.
    const w = await twoCheckpointsThenCrash();
    const restartedAt = w.clock.wallNow();
    w.start({ checkpointIntervalEntries: 1_000_000, checkpointIntervalMs: 3_600_000 });
    const registered = new Map<string, number>();
    await w.until('every node registered under its id again', () => {
      for (const m of w.coord.members('observer'))
        if (m.updatedAt > restartedAt && !registered.has(m.nodeId))
          registered.set(m.nodeId, m.updatedAt);
      return registered.size === 3;
    });
    const since = (id: string, event: string, dependency?: string) =>
      w.lines.find(
        (l) =>
          l.at >= restartedAt &&
          l.fields['node'] === id &&
          l.fields['event'] === event &&
          (dependency === undefined || l.fields['dependency'] === dependency),
      );
    for (const id of ['n1', 'n2', 'n3']) {
      // The dead process's lease was still live: the new one waited for it...
      expect(since(id, 'waiting', 'node id')).toBeDefined();
      expect(registered.get(id)! - restartedAt).toBeGreaterThan(TTL / 2);
      // ... and had its checkpoint loaded by then.
      expect(since(id, 'checkpointLoaded')!.at).toBeLessThan(registered.get(id)!);
    }
    await w.until('a primary after restart', () => w.primaries().length === 1);
    const after = await w.client();
    for (let i = 0; i < 40; i++)
      expect((await w.settle(after.get(`key-${i}`))).key).toBe(`key-${i}`);
  });

  it('a corrupt newest checkpoint is reported and the older one used', async () => {
    const w = await twoCheckpointsThenCrash();
    const [newest, older] = await w.checkpoints.list();
    w.checkpoints.corrupt(newest!.name, 100);
    await restartFromOlder(w, older!.name);
    for (const { runtime } of w.nodes) {
      expect(runtime.checkpointStats.corrupt).toBe(1);
      expect(runtime.checkpointStats.lastCorrupt).toContain(newest!.name);
    }
    expect(w.lines.some((l) => l.fields['event'] === 'checkpointCorrupt')).toBe(true);
  });

  // Seen with real servers (bench coldstart, 1M objects): a read of the newest checkpoint
  // delivered its chunks and then never ended; the node waited in `starting` for over 7 minutes.
  it('a newest checkpoint whose read stalls is given up and the older one used', async () => {
    const w = await twoCheckpointsThenCrash();
    const [newest, older] = await w.checkpoints.list();
    w.checkpoints.stall(newest!.name, 1);
    await restartFromOlder(w, older!.name, CHECKPOINT_READ_STALL_MS + 10_000);
    for (const { runtime } of w.nodes) expect(runtime.checkpointStats.corrupt).toBe(0);
    expect(
      w.lines.some(
        (l) =>
          l.fields['event'] === 'checkpointUnreadable' && l.fields['checkpoint'] === newest!.name,
      ),
    ).toBe(true);
  });

  // Seen with real servers (bench coldstart, 1M objects, 2026-12-06): `understudy checkpoint
  // create` failed after 300 s (the HTTP client's headers timeout) while the standby's write
  // waited on the read-back of its staged checkpoint, which never ended.
  it('a checkpoint write whose read-back stalls fails within the stall deadline, lists nothing, and the next write succeeds', async () => {
    const w = new World();
    w.start({ checkpointIntervalEntries: 15, checkpointKeep: 3 });
    await w.until('a primary', () => w.primaries().length === 1);
    const api = await w.client();
    await w.settle(api.mountSegment('seg-a', 'sn-a', 1 << 24));
    w.checkpoints.stallStaged(1);
    await writeSome(w, api, 0, 20);
    await w.until(
      'a failed checkpoint write',
      () => w.nodes.some((n) => n.runtime.checkpointStats.failed >= 1),
      CHECKPOINT_READ_STALL_MS + 10_000,
    );
    expect(await w.checkpoints.list()).toEqual([]);
    expect(w.checkpoints.stagedCount).toBe(0);
    const failed = w.lines.find((l) => l.fields['event'] === 'checkpointFailed');
    expect(failed?.fields['err']).toContain('delivered nothing for');
    for (const { runtime } of w.nodes) expect(runtime.checkpointStats.corrupt).toBe(0);
    // Nothing was lost: the next write (the read-back no longer stalls) is listed.
    w.checkpoints.stallStaged(undefined);
    await writeSome(w, api, 20, 40);
    await w.until('a checkpoint', () =>
      w.nodes.some((n) => n.runtime.checkpointStats.written >= 1),
    );
    expect((await w.checkpoints.list()).length).toBeGreaterThan(0);
    for (let i = 0; i < 40; i++) expect((await w.settle(api.get(`key-${i}`))).key).toBe(`key-${i}`);
  });

  it('with no checkpoint and a trimmed stream every node fails closed and says why', async () => {
    const w = new World();
    w.start({ checkpointIntervalEntries: 1_000_000, checkpointIntervalMs: 3_600_000 });
    await w.until('a primary', () => w.primaries().length === 1);
    const api = await w.client();
    await w.settle(api.mountSegment('seg-a', 'sn-a', 1 << 24));
    await writeSome(w, api, 0, 10);
    await w.crashAll();
    w.log.trimBefore(5);
    await w.run(TTL + 500);
    w.start();
    await w.run(5000);
    expect(w.primaries()).toEqual([]);
    for (const { runtime } of w.nodes) {
      expect(runtime.role).toBe('starting');
      expect(runtime.status().failClosed).toMatch(
        /stream starts at entry \d+ and there is no checkpoint/,
      );
    }
    expect(w.lines.filter((l) => l.fields['event'] === 'failClosed').length).toBeGreaterThanOrEqual(
      3,
    );
    // Purged entirely: no entries left, but it was written: still closed.
    w.log.trimBefore(1_000);
    await w.run(2000);
    for (const { runtime } of w.nodes)
      expect(runtime.status().failClosed).toMatch(/holds no entries/);
  });

  // Issue 25: every node loaded the older checkpoint the stream still continued, without a word,
  // and served; the keys only the newest checkpoint held answered OBJECT_NOT_FOUND.
  it('a stream that lost its tail past the newest checkpoint: no node serves, each says why; accept-loss goes on from the newest', async () => {
    const w = await twoCheckpointsThenCrash();
    const [newest, older] = await w.checkpoints.list();
    const cut = older!.lastStreamSeq + 1;
    expect(cut).toBeLessThan(newest!.lastStreamSeq);
    w.log.loseTail(cut);
    await w.run(TTL + 500);
    const restartedAt = w.lines.length;
    w.start({ checkpointIntervalEntries: 1_000_000, checkpointIntervalMs: 3_600_000 });
    await w.run(3 * TTL);
    expect(w.primaries()).toEqual([]);
    for (const { runtime } of w.nodes) {
      expect(runtime.role).toBe('starting');
      expect(runtime.checkpointStats.loadedFrom).toBeUndefined();
      expect(runtime.status().failClosed).toContain(
        `checkpoint ${newest!.name} holds entries to seq ${newest!.appliedSeq}`,
      );
      expect(runtime.status().checkpoints?.streamTailLost).toEqual({
        checkpoint: newest!.name,
        checkpointSeq: newest!.appliedSeq,
        checkpointStreamSeq: newest!.lastStreamSeq,
        streamLastSeq: w.log.bounds().lastSeq,
        streamLastStreamSeq: cut,
      });
    }
    const since = w.lines.slice(restartedAt);
    expect(since.some((l) => l.fields['event'] === 'checkpointLoaded')).toBe(false);
    const closed = since.filter((l) => l.fields['event'] === 'failClosed');
    expect(new Set(closed.map((l) => l.fields['node']))).toEqual(new Set(['n1', 'n2', 'n3']));
    expect(closed.every((l) => l.fields['streamTailLost'] === true)).toBe(true);

    const operator = {
      opLog: createMemoryOpLog(w.log, { nodeId: 'operator' }),
      checkpoints: w.checkpoints,
      clock: w.clock,
      readCheckpoint: readMetadataCheckpoint,
    };
    const refusal = (seq: number) =>
      w.settle(acceptTailLoss(operator, seq).catch((e: unknown) => e));
    expect(await refusal(older!.appliedSeq)).toMatchObject({ reason: 'notNewest' });
    const accepted = await w.settle(acceptTailLoss(operator, newest!.appliedSeq));
    expect(accepted.checkpoint).toMatchObject({ name: newest!.name, lastStreamSeq: cut });
    await w.until('a primary after the loss was accepted', () => w.primaries().length === 1);
    for (const { runtime } of w.nodes) {
      expect(runtime.checkpointStats.loadedFrom).toBe(newest!.name);
      expect(runtime.status().failClosed).toBeUndefined();
    }
    // The keys were written in order: the newest checkpoint holds the first objectCount.
    const api = await w.client();
    for (let i = 0; i < newest!.objectCount; i++)
      expect((await w.settle(api.get(`key-${i}`))).key).toBe(`key-${i}`);
    await writeSome(w, api, 100, 105);
    for (let i = 100; i < 105; i++)
      expect((await w.settle(api.get(`key-${i}`))).key).toBe(`key-${i}`);
    await w.run(1000);
    expect(new Set(w.nodes.map((n) => stateDigest(n.runtime.store.state))).size).toBe(1);
    expect(await refusal(newest!.appliedSeq)).toMatchObject({ reason: 'noLoss' });
  });
});

/** A cluster that wrote two checkpoints (40 keys, the stream trimmed below them), all crashed. */
async function twoCheckpointsThenCrash(): Promise<World> {
  const w = new World();
  w.start({ checkpointIntervalEntries: 15, checkpointKeep: 3 });
  await w.until('a primary', () => w.primaries().length === 1);
  const api = await w.client();
  await w.settle(api.mountSegment('seg-a', 'sn-a', 1 << 24));
  await writeSome(w, api, 0, 20);
  await w.until('a checkpoint', () => w.nodes.some((n) => n.runtime.checkpointStats.written >= 1));
  await writeSome(w, api, 20, 40);
  await w.until('two checkpoints', () =>
    w.nodes.some((n) => n.runtime.checkpointStats.written >= 2),
  );
  expect(w.log.bounds().firstSeq).toBeGreaterThan(1);
  await w.crashAll();
  return w;
}

/** Restarts the crashed cluster: every node loads checkpoint `older` and every key reads back. */
async function restartFromOlder(w: World, older: string, limitMs?: number): Promise<void> {
  await w.run(TTL + 500);
  w.start({ checkpointIntervalEntries: 1_000_000, checkpointIntervalMs: 3_600_000 });
  await w.until('a primary after restart', () => w.primaries().length === 1, limitMs);
  for (const { runtime } of w.nodes) expect(runtime.checkpointStats.loadedFrom).toBe(older);
  const after = await w.client();
  for (let i = 0; i < 40; i++) expect((await w.settle(after.get(`key-${i}`))).key).toBe(`key-${i}`);
}
