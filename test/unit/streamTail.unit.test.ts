// When a checkpoint is past the stream's end (the stream lost acknowledged entries), and the
// operator's way on: findTailLoss, StreamTailLostError, acceptTailLoss on the memory adapters.
import { describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../../src/adapters/memory/memoryCheckpointStore.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
import { checkpointFrames } from '../../src/domain/snapshot/checkpoint.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { CheckpointInfo } from '../../src/ports/checkpointStore.ts';
import type { LogBounds } from '../../src/ports/opLog.ts';
import {
  acceptTailLoss,
  checkStreamTail,
  findTailLoss,
  pastStreamEnd,
  StreamTailLostError,
} from '../../src/node/streamTail.ts';
import { FailClosedError } from '../../src/node/checkpoints/restoreWithoutPrimary.ts';
import { checkpointInfo } from '../fixtures/checkpointInfo.ts';
import { readMetadataCheckpoint as readCheckpoint } from '../../src/node/metadataDomain.ts';

const info = (appliedSeq: number, lastStreamSeq: number): CheckpointInfo =>
  checkpointInfo(appliedSeq, { lastStreamSeq });

const bounds = (firstSeq: number, lastSeq: number, lastStreamSeq: number): LogBounds => ({
  firstSeq,
  lastSeq,
  lastStreamSeq,
});

describe('a checkpoint past the stream end', () => {
  it('is one whose message is past the stream last sequence, or whose seq is past its last entry', () => {
    // The stream as retention leaves it: from the oldest checkpoint's message on.
    expect(pastStreamEnd(bounds(40, 120, 110), info(100, 95))).toBe(false);
    expect(pastStreamEnd(bounds(40, 120, 110), info(120, 110))).toBe(false);
    // Emptied (purged) at the checkpoint's message: continued, not lost.
    expect(pastStreamEnd(bounds(0, 0, 95), info(100, 95))).toBe(false);
    // The sequence went back (a power loss): lost.
    expect(pastStreamEnd(bounds(40, 80, 70), info(100, 95))).toBe(true);
    expect(pastStreamEnd(bounds(0, 0, 70), info(100, 95))).toBe(true);
    // The last messages deleted, the sequence kept: lost too.
    expect(pastStreamEnd(bounds(40, 80, 110), info(100, 95))).toBe(true);
  });

  it('findTailLoss names the newest one past the end and where the stream ends; the error says what to run', () => {
    const listed = [info(200, 180), info(100, 95), info(50, 45)];
    expect(findTailLoss(listed, bounds(40, 220, 200))).toBeUndefined();
    const loss = findTailLoss(listed, bounds(40, 120, 110));
    expect(loss).toEqual({
      checkpoint: listed[0]!.name,
      checkpointSeq: 200,
      checkpointStreamSeq: 180,
      streamLastSeq: 120,
      streamLastStreamSeq: 110,
    });
    const err = new StreamTailLostError(loss!);
    expect(err).toBeInstanceOf(FailClosedError);
    expect(err.retryable).toBe(true);
    expect(err.reason).toBe(
      `checkpoint ${listed[0]!.name} holds entries to seq 200 (stream seq 180) but the stream ends ` +
        'at entry 120 (stream seq 110): acknowledged entries were lost from the stream. Restore ' +
        'the stream, or accept the loss and go on from the newest checkpoint: understudy ' +
        'checkpoint accept-loss --seq 200',
    );
  });

  it('checkStreamTail lists the checkpoints before it reads the bounds (a checkpoint written meanwhile is not a loss)', async () => {
    const calls: string[] = [];
    const deps = {
      opLog: {
        bounds: () => {
          calls.push('bounds');
          return Promise.resolve(bounds(1, 10, 10));
        },
      },
      checkpoints: {
        list: () => {
          calls.push('list');
          return Promise.resolve([info(10, 10)]);
        },
      },
    };
    await checkStreamTail(deps);
    expect(calls).toEqual(['list', 'bounds']);
    deps.opLog.bounds = () => Promise.resolve(bounds(1, 8, 8));
    await expect(checkStreamTail(deps)).rejects.toBeInstanceOf(StreamTailLostError);
  });
});

describe('acceptTailLoss', () => {
  async function storeWith(...claims: [number, number][]): Promise<MemoryCheckpointStore> {
    const store = new MemoryCheckpointStore(new SimClock(0));
    for (const [appliedSeq, lastStreamSeq] of claims) {
      const state = { ...emptyState(), appliedSeq };
      let stateDigest = 0;
      const staged = await store.write(
        checkpointFrames(state, undefined, (d) => (stateDigest = d)),
      );
      await staged.publish({ ...info(appliedSeq, lastStreamSeq), stateDigest });
    }
    return store;
  }

  function log(start: LogBounds) {
    let current = start;
    const trimmed: number[] = [];
    return {
      trimmed,
      bounds: () => Promise.resolve(current),
      trimThrough: (streamSeq: number) => {
        trimmed.push(streamSeq);
        current = bounds(0, 0, current.lastStreamSeq);
        return Promise.resolve();
      },
    };
  }

  it('makes the emptied stream continue the newest checkpoint, removing older ones past the end; refuses anything else', async () => {
    const checkpoints = await storeWith([50, 45], [100, 95], [200, 180]);
    const opLog = log(bounds(45, 90, 85));
    const clock = new SimClock(0);
    await expect(
      acceptTailLoss({ opLog, checkpoints, clock, readCheckpoint }, 100),
    ).rejects.toMatchObject({
      name: 'AcceptLossRefusedError',
      reason: 'notNewest',
      message: expect.stringContaining('the newest checkpoint is at seq 200') as unknown,
    });
    expect(opLog.trimmed).toEqual([]);
    const accepted = await acceptTailLoss({ opLog, checkpoints, clock, readCheckpoint }, 200);
    expect(accepted.checkpoint).toMatchObject({ appliedSeq: 200, lastStreamSeq: 85 });
    expect(accepted.removed).toEqual([info(100, 0).name]);
    expect(opLog.trimmed).toEqual([85]);
    expect((await checkpoints.list()).map((c) => [c.appliedSeq, c.lastStreamSeq])).toEqual([
      [200, 85],
      [50, 45],
    ]);
    // Now the stream continues it: nothing to accept, and a node would start from it.
    expect(findTailLoss(await checkpoints.list(), await opLog.bounds())).toBeUndefined();
    await expect(
      acceptTailLoss({ opLog, checkpoints, clock, readCheckpoint }, 200),
    ).rejects.toMatchObject({
      reason: 'noLoss',
    });
  });

  it('changes nothing when the newest checkpoint does not read back', async () => {
    const checkpoints = await storeWith([200, 180]);
    const [newest] = await checkpoints.list();
    checkpoints.corrupt(newest!.name, 10);
    const opLog = log(bounds(1, 90, 85));
    await expect(
      acceptTailLoss({ opLog, checkpoints, clock: new SimClock(0), readCheckpoint }, 200),
    ).rejects.toMatchObject({ reason: 'unreadable' });
    expect(opLog.trimmed).toEqual([]);
    expect((await checkpoints.list())[0]?.lastStreamSeq).toBe(180);
  });
});
