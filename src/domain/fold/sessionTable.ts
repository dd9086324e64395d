import { eventKey } from '../log/eventKey.ts';
import {
  MAX_SESSION_RESULTS,
  MAX_SESSIONS,
  SESSION_SWEEP_INTERVAL_MS,
  SESSION_TTL_MS,
} from '../model/limits.ts';
import { SESSION_BUCKETS, sessionBucketOf } from '../model/shard.ts';
import type { LoggedEvent, RequestOrigin, SessionRecord, SessionResult } from '../model/types.ts';
import type { WorkingState } from './workingState.ts';

// The session table's rules: what the fold keeps of each client's requests (their results, so
// a retried request is answered, not applied twice) and when it forgets a session.

/**
 * Keeps the result of a client's request in its session, forgetting the results the client
 * no longer waits for. The primary never logs a request twice nor one below the session's
 * oldest pending number: such an entry is a fold error. A session is copied once per draft,
 * then changed in place, so a batch of one client's requests costs one copy of its results.
 */
export function recordResult(
  working: WorkingState,
  origin: RequestOrigin,
  logged: LoggedEvent,
): void {
  const { event, seq } = logged;
  if (event.op === 'EVICTION' || event.op === 'EPOCH')
    working.fail(`${event.op} has a request origin`);
  const { sessionId, requestNo } = origin;
  const root = working.root;
  let session = working.ownSession(sessionId);
  if (session === undefined) {
    const index = sessionBucketOf(sessionId);
    const bucket = working.readSessionBucket(index);
    const at = bucket.findIndex((s) => s.sessionId === sessionId);
    const previous = at < 0 ? undefined : bucket[at];
    if (previous === undefined && root.sessionCount >= MAX_SESSIONS) forgetIdlestSession(working);
    session = {
      sessionId,
      oldestPending: previous?.oldestPending ?? 0,
      lastSeq: previous?.lastSeq ?? 0,
      lastTs: previous?.lastTs ?? 0,
      results: previous === undefined ? [] : [...previous.results],
    };
    working.putSession(index, at, session);
  }
  const floor = session.oldestPending;
  if (requestNo < floor)
    working.fail(`request ${requestNo} of session ${sessionId} is below ${floor}`);
  let oldestPending = Math.max(floor, origin.oldestPending);
  const results = session.results;
  // Ascending by request number: drop those below oldestPending, find where this one goes.
  const below = lowerBound(results, oldestPending);
  if (below > 0) results.splice(0, below);
  const i = lowerBound(results, requestNo);
  if (results[i]?.requestNo === requestNo)
    working.fail(`request ${requestNo} of session ${sessionId} applied twice`);
  const key = eventKey(event);
  const replicas = event.op === 'PUT_START' ? working.getObject(key)?.replicas : undefined;
  const result: SessionResult = Object.freeze(
    replicas === undefined
      ? { requestNo, seq, op: event.op, key }
      : { requestNo, seq, op: event.op, key, replicas },
  );
  if (i === results.length) results.push(result);
  else results.splice(i, 0, result);
  if (results.length > MAX_SESSION_RESULTS) {
    results.splice(0, results.length - MAX_SESSION_RESULTS);
    oldestPending = Math.max(oldestPending, (results[0] as SessionResult).requestNo);
  }
  session.oldestPending = oldestPending;
  session.lastSeq = seq;
  session.lastTs = root.logTime;
}

/** Sweeps the table when SESSION_SWEEP_INTERVAL_MS of logged time passed since the last sweep. */
export function sweepSessionsWhenDue(working: WorkingState): void {
  const root = working.root;
  if (root.logTime - root.sessionsSweptAt >= SESSION_SWEEP_INTERVAL_MS) sweepSessions(working);
}

/** Forgets every session idle for SESSION_TTL_MS of logged time. */
function sweepSessions(working: WorkingState): void {
  const root = working.root;
  root.sessionsSweptAt = root.logTime;
  if (root.sessionCount === 0) return;
  const cutoff = root.logTime - SESSION_TTL_MS;
  for (let i = 0; i < SESSION_BUCKETS; i++) {
    const bucket = working.readSessionBucket(i);
    for (let j = bucket.length - 1; j >= 0; j--) {
      if ((bucket[j] as SessionRecord).lastTs <= cutoff) working.forgetSession(i, j);
    }
  }
}

/** At MAX_SESSIONS: forgets the session whose last request is the oldest. */
function forgetIdlestSession(working: WorkingState): void {
  let oldest: { bucket: number; seq: number; id: string } | undefined;
  for (let i = 0; i < SESSION_BUCKETS; i++) {
    for (const session of working.readSessionBucket(i)) {
      if (oldest === undefined || session.lastSeq < oldest.seq)
        oldest = { bucket: i, seq: session.lastSeq, id: session.sessionId };
    }
  }
  if (oldest === undefined) return;
  const id = oldest.id;
  working.forgetSession(
    oldest.bucket,
    working.readSessionBucket(oldest.bucket).findIndex((s) => s.sessionId === id),
  );
}

/** The first index of `results` (ascending by requestNo) whose requestNo is >= `requestNo`. */
function lowerBound(results: readonly SessionResult[], requestNo: number): number {
  let lo = 0;
  let hi = results.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((results[mid] as SessionResult).requestNo < requestNo) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
