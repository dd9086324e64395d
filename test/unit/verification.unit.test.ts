import { describe, expect, it } from 'vitest';
import { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import { systemClock } from '../../src/adapters/systemClock.ts';
import { shardVerifyDigest } from '../../src/domain/verify/digests.ts';
import { stateDigest } from '../../src/domain/log/checksum.ts';
import { foldAll } from '../../src/domain/fold/fold.ts';
import { shardOf } from '../../src/domain/model/shard.ts';
import { emptyState, getObject } from '../../src/domain/model/state.ts';
import type { LoggedEvent, MetadataEvent, MetadataState } from '../../src/domain/model/types.ts';
import {
  AdminClient,
  AdminError,
  adminBusKey,
  adminHandler,
  jsonReply,
  parseRequest,
  partReply,
} from '../../src/admin/adminApi.ts';
import {
  fetchFullSync,
  FullSyncSource,
  type SyncChunkRequest,
  type SyncStartReply,
} from '../../src/admin/fullSync.ts';
import { decodeBinaryChunk, isBinaryChunk } from '../../src/domain/snapshot/binaryChunk.ts';
import { encodeChunk } from '../../src/domain/snapshot/jsonChunk.ts';
import { snapshotChunks } from '../../src/domain/snapshot/chunks.ts';
import {
  CORRUPTION_KINDS,
  CorruptionError,
  corruptState,
  runVerificationRound,
  verifyOp,
} from '../../src/admin/verification.ts';

/** A state with `n` objects on two segments, folded from a log. */
function stateWith(n: number, from: MetadataState = emptyState(), prefix = 'k'): MetadataState {
  const events: MetadataEvent[] = [];
  if (from.segments.size === 0) {
    events.push({ op: 'MOUNT_SEGMENT', segmentId: 's0', nodeId: 'n0', size: 1 << 30 });
    events.push({ op: 'MOUNT_SEGMENT', segmentId: 's1', nodeId: 'n1', size: 1 << 30 });
  }
  const offset = from.objectCount * 16;
  for (let i = 0; i < n; i++) {
    const key = `${prefix}${i}`;
    events.push({
      op: 'PUT_START',
      key,
      size: 16,
      replicas: [
        {
          segmentId: 's0',
          nodeId: 'n0',
          offset: offset + i * 16,
          length: 16,
          status: 'processing',
        },
        {
          segmentId: 's1',
          nodeId: 'n1',
          offset: offset + i * 16,
          length: 16,
          status: 'processing',
        },
      ],
    });
    events.push({ op: 'PUT_END', key });
  }
  const logged: LoggedEvent[] = events.map((event, i) => ({
    seq: from.appliedSeq + i + 1,
    epoch: 1,
    ts: 0,
    event,
  }));
  return foldAll(from, logged);
}

function primaryOn(bus: MemoryApiBus, committed: () => MetadataState, maxPartBytes?: number) {
  const source = new FullSyncSource({
    committed: () => ({ state: committed(), lastStreamSeq: committed().appliedSeq + 7 }),
    clock: systemClock,
    chunkSize: 1000,
    ...(maxPartBytes === undefined ? {} : { maxPartBytes }),
  });
  const handler = adminHandler({
    verify: verifyOp({ committed, maxGap: 1000, maxMismatches: 100 }),
    ...source.ops(),
  });
  return { source, listening: bus.serverTransport(adminBusKey('c')).listen(handler) };
}

describe('full sync over the admin channel', () => {
  it('rebuilds a state with an equal digest, in parts, while the primary moves on', async () => {
    const bus = new MemoryApiBus();
    let primary = stateWith(3000);
    const { source, listening } = primaryOn(bus, () => primary, 16 * 1024);
    const listener = await listening;
    const admin = new AdminClient(bus.clientTransport(adminBusKey('c')), 5000);
    const frozen = primary;
    const sync = fetchFullSync(admin);
    primary = stateWith(10, primary, 'later'); // writes go on while the sync runs
    const result = await sync;
    expect(result.state.appliedSeq).toBe(frozen.appliedSeq);
    expect(result.lastStreamSeq).toBe(frozen.appliedSeq + 7);
    expect(stateDigest(result.state)).toBe(stateDigest(frozen));
    expect(result.state.objectCount).toBe(3000);
    expect(result.chunks).toBe(4);
    expect(result.bytes).toBeGreaterThan(16 * 1024);
    expect(source.sessions).toBe(0);
    await listener.close();
  });

  it('counts the sessions in its chunks: a state of mostly sessions syncs whole', async () => {
    const bus = new MemoryApiBus();
    const base = stateWith(0);
    // 2,500 sessions, one object each: 5,002 items, 6 chunks of 1,000 (3 without the sessions).
    const logged: LoggedEvent[] = [];
    for (let i = 0; i < 2500; i++) {
      logged.push({
        seq: base.appliedSeq + i + 1,
        epoch: 1,
        ts: 0,
        event: { op: 'MOUNT_SEGMENT', segmentId: `seg${i}`, nodeId: 'n9', size: 1 << 20 },
        origin: { sessionId: i.toString(16).padStart(32, '0'), requestNo: 1, oldestPending: 1 },
      });
    }
    const primary = foldAll(base, logged);
    expect(primary.sessionCount).toBe(2500);
    const { source, listening } = primaryOn(bus, () => primary);
    const listener = await listening;
    const result = await fetchFullSync(
      new AdminClient(bus.clientTransport(adminBusKey('c')), 5000),
    );
    expect(result.chunks).toBe(6);
    expect(result.state.sessionCount).toBe(2500);
    expect(stateDigest(result.state)).toBe(stateDigest(primary));
    expect(source.sessions).toBe(0);
    await listener.close();
  });

  it('sends chunks in the binary encoding, and reads the JSON chunks of an earlier primary', async () => {
    const primary = stateWith(1500);
    const bus = new MemoryApiBus();
    const listener = await primaryOn(bus, () => primary).listening;
    const admin = new AdminClient(bus.clientTransport(adminBusKey('c')), 5000);
    const start = await admin.json<SyncStartReply>('syncStart', {});
    const first = await admin.part('syncChunk', { syncId: start.syncId, index: 0, part: 0 });
    expect(isBinaryChunk(first.bytes)).toBe(true);
    expect(decodeBinaryChunk(first.bytes)).toEqual([...snapshotChunks(primary, 1000)][0]);
    await listener.close();

    // A primary that sends JSON chunks (snapshot.ts's encoding).
    const old = new MemoryApiBus();
    const chunks = [...snapshotChunks(primary, 1000)];
    const oldListener = await old.serverTransport(adminBusKey('c')).listen(
      adminHandler({
        syncStart: () =>
          jsonReply({
            syncId: 'old',
            total: chunks.length,
            appliedSeq: primary.appliedSeq,
            lastStreamSeq: primary.appliedSeq,
            objectCount: primary.objectCount,
          }),
        syncChunk: (body) =>
          partReply(
            1,
            encodeChunk(chunks[parseRequest<SyncChunkRequest>('syncChunk', body).index]!),
          ),
      }),
    );
    const result = await fetchFullSync(
      new AdminClient(old.clientTransport(adminBusKey('c')), 5000),
    );
    expect(stateDigest(result.state)).toBe(stateDigest(primary));
    await oldListener.close();
  });

  it('an empty state syncs as one chunk', async () => {
    const bus = new MemoryApiBus();
    const empty = emptyState();
    const listener = await primaryOn(bus, () => empty).listening;
    const result = await fetchFullSync(
      new AdminClient(bus.clientTransport(adminBusKey('c')), 5000),
    );
    expect(result.chunks).toBe(1);
    expect(stateDigest(result.state)).toBe(stateDigest(empty));
    await listener.close();
  });

  it('refuses chunks out of order and unknown sessions, as typed retryable errors', () => {
    const source = new FullSyncSource({
      committed: () => ({ state: stateWith(10), lastStreamSeq: 1 }),
      clock: systemClock,
      chunkSize: 4,
    });
    const start = source.start();
    expect(() => source.chunk({ syncId: start.syncId, index: 2, part: 0 })).toThrow(AdminError);
    expect(() => source.chunk({ syncId: 'nope', index: 0, part: 0 })).toThrowError(
      expect.objectContaining({ code: 'SYNC_GONE', retryable: true }) as Error,
    );
  });
});

describe('verification rounds', () => {
  it.each(CORRUPTION_KINDS)('finds and repairs a %s corruption', async (kind) => {
    const bus = new MemoryApiBus();
    const primary = stateWith(200);
    const listener = await primaryOn(bus, () => primary).listening;
    const admin = new AdminClient(bus.clientTransport(adminBusKey('c')), 5000);
    const key = kind === 'extra' ? 'intruder' : 'k17';
    const corrupted = corruptState(primary, key, kind);
    expect(stateDigest(corrupted)).not.toBe(stateDigest(primary));
    const settings = { fraction: 1, maxKeysPerShard: 100 };
    const outcome = await runVerificationRound(admin, corrupted, () => corrupted, 0, settings);
    expect(outcome.status).toBe('MISMATCH');
    expect(outcome.needsFullSync).toBe(false);
    expect(outcome.repaired).toBeDefined();
    const repaired = outcome.repaired as MetadataState;
    const shard = shardOf(key);
    expect(shardVerifyDigest(repaired, shard)).toBe(shardVerifyDigest(primary, shard));
    expect(stateDigest(repaired)).toBe(stateDigest(primary));
    const again = await runVerificationRound(admin, repaired, () => repaired, 1, settings);
    expect(again.status).toBe('OK');
    await listener.close();
  });

  it('a standby far behind is told to full-sync', async () => {
    const bus = new MemoryApiBus();
    const primary = stateWith(600);
    const listener = await primaryOn(bus, () => primary).listening;
    const admin = new AdminClient(bus.clientTransport(adminBusKey('c')), 5000);
    const behind = stateWith(10);
    const outcome = await runVerificationRound(admin, behind, () => behind, 0, {
      fraction: 0.1,
      maxKeysPerShard: 100,
    });
    expect(outcome).toMatchObject({ status: 'NEED_FULL_SYNC', needsFullSync: true });
    await listener.close();
  });

  // Regression (issue 27, write bench lag p99 46,466 entries): at 6,000 writes/s a standby
  // folding in step was > 1000 entries behind by the time the primary answered its round, was
  // sent to full sync, and stopped folding for the whole state's transfer (4-5 s at 300k
  // objects): the lag of the bench's window came from that full sync, not from a slow fold.
  it('a standby behind by more than maxGap that folds on is not sent to full sync', async () => {
    const bus = new MemoryApiBus();
    const primary = stateWith(2000);
    const listener = await primaryOn(bus, () => primary).listening;
    const admin = new AdminClient(bus.clientTransport(adminBusKey('c')), 5000);
    const sampled = stateWith(500); // the same log, 1500 objects before the primary
    const folded = stateWith(600); // ...and 100 objects further when the answer comes
    const since = folded.appliedSeq - sampled.appliedSeq;
    expect(primary.appliedSeq - sampled.appliedSeq).toBeGreaterThan(1000);
    const outcome = await runVerificationRound(admin, sampled, () => folded, 0, {
      fraction: 0.1,
      maxKeysPerShard: 100,
    });
    expect(outcome).toMatchObject({
      status: 'NEED_FULL_SYNC',
      needsFullSync: false,
      repaired: undefined,
    });
    expect(outcome.detail).toMatch(
      new RegExp(`^gap: .*; not synced: ${since} entries folded since, catching up from the log$`),
    );
    await listener.close();
  });

  it('corruptState refuses keys that do not fit the kind', () => {
    const state = stateWith(3);
    expect(() => corruptState(state, 'absent', 'size')).toThrow(CorruptionError);
    expect(() => corruptState(state, 'k1', 'extra')).toThrow(CorruptionError);
    expect(getObject(corruptState(state, 'k1', 'missing'), 'k1')).toBeUndefined();
  });
});
