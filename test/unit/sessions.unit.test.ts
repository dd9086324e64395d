import { describe, expect, it } from 'vitest';
import { sessionChecksum, stateDigest } from '../../src/domain/log/checksum.ts';
import { decodeEntry, encodeEntry } from '../../src/domain/log/codec.ts';
import { entryToJSON, fromEntry, toEntry } from '../../src/domain/log/eventCodec.ts';
import { fold, FoldError, foldAll } from '../../src/domain/fold/fold.ts';
import {
  MAX_SESSION_RESULTS,
  SESSION_SWEEP_INTERVAL_MS,
  SESSION_TTL_MS,
} from '../../src/domain/model/limits.ts';
import { requestStatus } from '../../src/domain/decide/sessions.ts';
import { SESSION_BUCKETS, sessionBucketOf } from '../../src/domain/model/shard.ts';
import { decodeChunk, encodeChunk } from '../../src/domain/snapshot/jsonChunk.ts';
import { SnapshotBuilder } from '../../src/domain/snapshot/snapshotBuilder.ts';
import { snapshotChunks } from '../../src/domain/snapshot/chunks.ts';
import { emptyState, getSession } from '../../src/domain/model/state.ts';
import type {
  LoggedEvent,
  MetadataEvent,
  MetadataState,
  RequestOrigin,
} from '../../src/domain/model/types.ts';
import { answerVerify } from '../../src/domain/verify/answer.ts';
import { applyCorrections } from '../../src/domain/verify/repair.ts';
import { buildVerifyRequest } from '../../src/domain/verify/sampling.ts';

const T0 = 1_700_000_000_000;
const A = 'a'.repeat(32);
const B = 'b'.repeat(32);

const origin = (
  sessionId: string,
  requestNo: number,
  oldestPending = requestNo,
): RequestOrigin => ({
  sessionId,
  requestNo,
  oldestPending,
});

function append(
  state: MetadataState,
  event: MetadataEvent,
  from?: RequestOrigin,
  ts = T0 + state.appliedSeq,
): MetadataState {
  const entry = { seq: state.appliedSeq + 1, epoch: 1, ts, event };
  return fold(state, from === undefined ? entry : { ...entry, origin: from });
}

function withSegments(): MetadataState {
  let state = emptyState();
  state = append(state, { op: 'MOUNT_SEGMENT', segmentId: 's0', nodeId: 'n0', size: 10_000 });
  return append(state, { op: 'MOUNT_SEGMENT', segmentId: 's1', nodeId: 'n1', size: 10_000 });
}

const putStart = (key: string, offset: number): MetadataEvent => ({
  op: 'PUT_START',
  key,
  size: 10,
  replicas: [
    { segmentId: 's0', nodeId: 'n0', offset, length: 10, status: 'processing' },
    { segmentId: 's1', nodeId: 'n1', offset, length: 10, status: 'processing' },
  ],
});

describe('the session table (fold)', () => {
  it('keeps the result of every request the client may still retry: seq and placement', () => {
    let state = withSegments();
    state = append(state, putStart('k', 0), origin(A, 1));
    state = append(state, { op: 'PUT_END', key: 'k' }, origin(A, 2, 1));
    const session = getSession(state, A)!;
    expect(session.results.map((r) => [r.requestNo, r.seq, r.op, r.key])).toEqual([
      [1, 3, 'PUT_START', 'k'],
      [2, 4, 'PUT_END', 'k'],
    ]);
    expect(session.results[0]!.replicas).toEqual([
      { segmentId: 's0', nodeId: 'n0', offset: 0, length: 10, status: 'processing' },
      { segmentId: 's1', nodeId: 'n1', offset: 0, length: 10, status: 'processing' },
    ]);
    expect(Object.isFrozen(session) && Object.isFrozen(session.results)).toBe(true);
    expect(state.sessionCount).toBe(1);
    const status = requestStatus(state, origin(A, 1), {
      type: 'putStart',
      key: 'k',
      size: 10,
      replicaNum: 2,
    });
    expect(status).toMatchObject({ kind: 'applied', result: { seq: 3 } });
  });

  it('forgets the results below the oldest pending number, and refuses those requests', () => {
    let state = withSegments();
    state = append(state, putStart('k', 0), origin(A, 1));
    state = append(state, putStart('j', 10), origin(A, 2, 1));
    state = append(state, { op: 'PUT_END', key: 'j' }, origin(A, 3, 2));
    expect(getSession(state, A)!.results.map((r) => r.requestNo)).toEqual([2, 3]);
    expect(getSession(state, A)!.oldestPending).toBe(2);
    expect(requestStatus(state, origin(A, 1), { type: 'putEnd', key: 'k' })).toMatchObject({
      kind: 'refused',
      error: { code: 'REQUEST_EXPIRED' },
    });
    // A late copy carrying an older mark does not lower it.
    state = append(state, { op: 'PUT_END', key: 'k' }, origin(A, 4, 1));
    expect(getSession(state, A)!.oldestPending).toBe(2);
    expect(requestStatus(state, origin(A, 9), { type: 'putEnd', key: 'k' }).kind).toBe('new');
  });

  it('refuses to fold a request applied twice or one below the oldest pending (the primary never logs those)', () => {
    let state = withSegments();
    state = append(state, putStart('k', 0), origin(A, 5));
    expect(() => append(state, { op: 'PUT_END', key: 'k' }, origin(A, 5))).toThrow(FoldError);
    expect(() => append(state, { op: 'PUT_END', key: 'k' }, origin(A, 4))).toThrow(FoldError);
  });

  it('keeps at most MAX_SESSION_RESULTS results per session, raising the oldest pending number', () => {
    let state = withSegments();
    const log: LoggedEvent[] = [];
    const total = MAX_SESSION_RESULTS + 5;
    for (let n = 1; n <= total; n++) {
      log.push({
        seq: state.appliedSeq + n,
        epoch: 1,
        ts: T0,
        event: { op: 'MOUNT_SEGMENT', segmentId: `x${n}`, nodeId: 'n', size: 1 },
        origin: origin(A, n, 1),
      });
    }
    state = foldAll(state, log);
    const session = getSession(state, A)!;
    expect(session.results).toHaveLength(MAX_SESSION_RESULTS);
    expect(session.oldestPending).toBe(6);
    expect(session.results[0]!.requestNo).toBe(6);
  });

  it('expires a session idle for SESSION_TTL_MS of logged time, whatever the clock of the folding node', () => {
    let state = withSegments();
    state = append(state, putStart('k', 0), origin(A, 1), T0);
    state = append(state, putStart('j', 10), origin(B, 1), T0 + SESSION_TTL_MS / 2);
    // Logged time never goes back: an entry with an older ts does not undo the time seen.
    state = append(state, { op: 'PUT_END', key: 'j' }, undefined, T0 + SESSION_TTL_MS + 1);
    state = append(state, { op: 'PUT_END', key: 'k' }, undefined, T0);
    expect(state.logTime).toBe(T0 + SESSION_TTL_MS + 1);
    expect(getSession(state, A)).toBeUndefined();
    expect(getSession(state, B)).toBeDefined();
    expect(state.sessionCount).toBe(1);
    state = append(state, { op: 'REMOVE', key: 'k' }, undefined, T0 + 2 * SESSION_TTL_MS);
    expect(getSession(state, B)).toBeUndefined();
    expect(state.sessionCount).toBe(0);
    expect(state.sessionsSweptAt).toBe(T0 + 2 * SESSION_TTL_MS);
    expect(SESSION_SWEEP_INTERVAL_MS).toBeLessThan(SESSION_TTL_MS);
  });

  it('is in the state digest: a different result is a different state', () => {
    const a = append(withSegments(), putStart('k', 0), origin(A, 1));
    const b = append(withSegments(), putStart('k', 0), origin(A, 2));
    const none = append(withSegments(), putStart('k', 0));
    expect(new Set([stateDigest(a), stateDigest(b), stateDigest(none)]).size).toBe(3);
  });
});

describe('request origins in the log', () => {
  it('round-trip through the payload and the binary frame, and show in replay JSON', () => {
    const logged: LoggedEvent = {
      seq: 3,
      epoch: 2,
      ts: T0,
      event: putStart('k', 0),
      origin: origin(A, 7, 4),
    };
    const entry = decodeEntry(encodeEntry(toEntry(logged)));
    expect(fromEntry(entry)).toEqual(logged);
    expect(entryToJSON(entry)['origin']).toEqual(origin(A, 7, 4));
    const plain = { ...logged };
    delete (plain as { origin?: unknown }).origin;
    expect(fromEntry(toEntry(plain))).toEqual(plain);
  });

  it('a malformed origin makes the entry undecodable', () => {
    const bad = (o: RequestOrigin) => () =>
      fromEntry(toEntry({ seq: 1, epoch: 1, ts: T0, event: putStart('k', 0), origin: o }));
    expect(bad(origin('XYZ', 1))).toThrow(/sessionId/);
    expect(bad(origin(A, 0))).toThrow(/requestNo/);
    expect(bad({ sessionId: A, requestNo: 3, oldestPending: 4 })).toThrow(/oldestPending/);
    expect(() =>
      fromEntry(
        toEntry({
          seq: 1,
          epoch: 1,
          ts: T0,
          event: { op: 'EPOCH', epoch: 1, nodeId: 'n' },
          origin: origin(A, 1),
        }),
      ),
    ).toThrow(/origin/);
  });
});

describe('sessions in full sync and verification', () => {
  function manySessions(): MetadataState {
    let state = withSegments();
    for (let i = 0; i < 40; i++) {
      const id = i.toString(16).padStart(32, '0');
      state = append(state, putStart(`k${i}`, i * 10), origin(id, 1));
    }
    return state;
  }

  it('a snapshot carries the session table: equal digest, sessions and logged time', () => {
    const state = manySessions();
    const builder = new SnapshotBuilder();
    for (const chunk of snapshotChunks(state, 7)) builder.add(decodeChunk(encodeChunk(chunk)));
    const rebuilt = builder.finish();
    expect(stateDigest(rebuilt)).toBe(stateDigest(state));
    expect(rebuilt.sessionCount).toBe(40);
    expect(rebuilt.logTime).toBe(state.logTime);
    expect(rebuilt.sessionsSweptAt).toBe(state.sessionsSweptAt);
    for (let i = 0; i < 40; i++) {
      const id = i.toString(16).padStart(32, '0');
      expect(getSession(rebuilt, id)).toEqual(getSession(state, id));
    }
    // Folding on from the rebuilt state stays identical.
    const next = (s: MetadataState) => append(s, { op: 'PUT_END', key: 'k3' }, origin(A, 1));
    expect(stateDigest(next(rebuilt))).toBe(stateDigest(next(state)));
  });

  it('verification finds a session that differs and repairs it in place', () => {
    const primary = manySessions();
    const victim = (7).toString(16).padStart(32, '0');
    const bucket = sessionBucketOf(victim);
    // The standby's copy of one session is wrong (as a memory fault would leave it).
    const wrong = { ...getSession(primary, victim)!, oldestPending: 99 };
    const standby = {
      ...primary,
      sessions: primary.sessions.map((b, i) =>
        i === bucket ? b.map((s) => (s.sessionId === victim ? wrong : s)) : b,
      ),
    };
    const shardIds = Array.from({ length: 1024 }, (_, i) => i).filter(
      (s) => s % SESSION_BUCKETS === bucket,
    );
    const request = buildVerifyRequest(standby, shardIds);
    expect(request.sessionBuckets).toEqual([bucket]);
    const response = answerVerify(primary, request);
    expect(response.status).toBe('MISMATCH');
    if (response.status !== 'MISMATCH') return;
    expect(response.sessionCorrections).toEqual([
      { sessionId: victim, record: getSession(primary, victim) },
    ]);
    const repaired = applyCorrections(standby, response);
    expect(sessionChecksum(getSession(repaired, victim)!)).toBe(
      sessionChecksum(getSession(primary, victim)!),
    );
    expect(stateDigest(repaired)).toBe(stateDigest(primary));
    expect(answerVerify(primary, buildVerifyRequest(repaired, shardIds)).status).toBe('OK');
  });

  it('no false mismatch for a session that changed after the standby seq', () => {
    const standby = manySessions();
    const id = (5).toString(16).padStart(32, '0');
    const primary = append(standby, { op: 'PUT_END', key: 'k5' }, origin(id, 2));
    const shardIds = Array.from({ length: 1024 }, (_, i) => i).filter(
      (s) => s % SESSION_BUCKETS === sessionBucketOf(id),
    );
    expect(answerVerify(primary, buildVerifyRequest(standby, shardIds)).status).toBe('OK');
  });
});
