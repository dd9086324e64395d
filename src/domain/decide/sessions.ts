/**
 * Client sessions: what makes a retried write exactly-once. Each write carries its session id,
 * its request number and the oldest number the client still waits for ({@link RequestOrigin});
 * the fold keeps, per session, the result of every request the client may still retry. A
 * request found there is answered with its original result (same seq, same placement) instead
 * of being decided again; one below the session's oldest pending number is refused, never
 * applied. The table is part of the state: every node folds it from the log, full sync and
 * digests carry it.
 */
import type { DomainError } from '../model/errors.ts';
import { invalidArgument, requestExpired } from '../model/errors.ts';
import { getSession } from '../model/state.ts';
import type {
  Command,
  MetadataEvent,
  MetadataState,
  RequestOrigin,
  SessionResult,
} from '../model/types.ts';

export type RequestStatus =
  /** Not seen: decide it. */
  | { readonly kind: 'new' }
  /** Applied before: answer `result`. */
  | { readonly kind: 'applied'; readonly result: SessionResult }
  /** Below what the session keeps (a late copy of an answered request): refuse with `error`. */
  | { readonly kind: 'refused'; readonly error: DomainError };

/** The event each command logs. */
export const OP_OF: Readonly<Record<Command['type'], MetadataEvent['op']>> = {
  mountSegment: 'MOUNT_SEGMENT',
  unmountSegment: 'UNMOUNT_SEGMENT',
  putStart: 'PUT_START',
  putEnd: 'PUT_END',
  putRevoke: 'PUT_REVOKE',
  remove: 'REMOVE',
};

/** The log op and entry key a command produces when it is applied. */
export function commandTarget(command: Command): { op: MetadataEvent['op']; key: string } {
  const op = OP_OF[command.type];
  const key =
    command.type === 'mountSegment' || command.type === 'unmountSegment'
      ? command.segmentId
      : command.key;
  return { op, key };
}

/**
 * What the session table of `state` says of request `origin` for `command`. A request number
 * that was applied for another op or key is refused with `INVALID_ARGUMENT` (a client bug:
 * numbers are per call).
 */
export function requestStatus(
  state: MetadataState,
  origin: RequestOrigin,
  command: Command,
): RequestStatus {
  const session = getSession(state, origin.sessionId);
  if (session === undefined) return { kind: 'new' };
  if (origin.requestNo < session.oldestPending) {
    return {
      kind: 'refused',
      error: requestExpired(origin.sessionId, origin.requestNo, session.oldestPending),
    };
  }
  const result = findResult(session.results, origin.requestNo);
  if (result === undefined) return { kind: 'new' };
  const target = commandTarget(command);
  if (result.op !== target.op || result.key !== target.key) {
    return {
      kind: 'refused',
      error: invalidArgument(
        'requestNo',
        `request ${origin.requestNo} of this session was ${result.op} of ${JSON.stringify(result.key)}, not ${target.op} of ${JSON.stringify(target.key)}`,
      ),
    };
  }
  return { kind: 'applied', result };
}

/** The result of `requestNo` in a session's results (ascending by request number). */
function findResult(
  results: readonly SessionResult[],
  requestNo: number,
): SessionResult | undefined {
  let lo = 0;
  let hi = results.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = results[mid] as SessionResult;
    if (r.requestNo === requestNo) return r;
    if (r.requestNo < requestNo) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
