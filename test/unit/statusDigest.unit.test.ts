import { describe, expect, it } from 'vitest';
import { shardDigest, stateDigest } from '../../src/domain/log/checksum.ts';
import { foldAll } from '../../src/domain/fold/fold.ts';
import { emptyState } from '../../src/domain/model/state.ts';
import type { LoggedEvent, MetadataState } from '../../src/domain/model/types.ts';
import { DigestBusyError, StatusDigest } from '../../src/admin/statusDigest.ts';

/** A state with `n` mounted segments, each mount from client session `session`. */
function mounted(n: number, session: string, from: MetadataState = emptyState()): MetadataState {
  const logged: LoggedEvent[] = Array.from({ length: n }, (_, i) => ({
    seq: from.appliedSeq + i + 1,
    epoch: 1,
    ts: i,
    event: { op: 'MOUNT_SEGMENT', segmentId: `${session}-${i}`, nodeId: 'n', size: 1000 },
    origin: { sessionId: session.repeat(32).slice(0, 32), requestNo: i + 1, oldestPending: 1 },
  }));
  return foldAll(from, logged);
}

describe('status digests', () => {
  it('equal stateDigest and shardDigest, sessions included; one computation per state', async () => {
    const digests = new StatusDigest({ sliceMs: 0 });
    const state = mounted(3, 'b', mounted(2, 'a'));
    const [first, second] = await Promise.all([digests.of(state), digests.of(state)]);
    expect(first.digest).toBe(stateDigest(state));
    expect(first.shards[5]).toBe(shardDigest(state, 5));
    expect(second).toBe(first);
  });

  it('refuses a request once maxWaiting computations are queued', async () => {
    const digests = new StatusDigest({ maxWaiting: 2 });
    const states = [mounted(1, 'a'), mounted(2, 'a'), mounted(3, 'a')];
    const queued = [digests.of(states[0]!), digests.of(states[1]!)];
    await expect(digests.of(states[2]!)).rejects.toBeInstanceOf(DigestBusyError);
    await Promise.all(queued);
    expect((await digests.of(states[2]!)).digest).toBe(stateDigest(states[2]!));
  });
});
