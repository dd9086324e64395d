/**
 * NATS subjects of the client API, one per cluster and operation:
 * `understudy.<cluster>.api.<op>`. Only the primary subscribes (to
 * `understudy.<cluster>.api.*`, in the queue group {@link API_QUEUE_GROUP}): the queue group is
 * a safety net for the short overlap in which a fenced primary has not yet unsubscribed while
 * its successor already has (each request then reaches one of them, and a fenced one answers
 * `NOT_PRIMARY`). A request nobody subscribes to gets NATS "no responders".
 */

/** The queue group every serving primary subscribes in. */
export const API_QUEUE_GROUP = 'understudy-api';

/**
 * The request/reply channels a primary answers on: `api` for clients, `admin` for the other
 * nodes (verification rounds, full sync).
 */
export type Channel = 'api' | 'admin';

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Throws when `cluster` cannot be one NATS subject token. */
export function assertClusterName(cluster: string): void {
  if (!TOKEN.test(cluster)) {
    throw new RangeError(
      `cluster name ${JSON.stringify(cluster)} must be non-empty and use only A-Z a-z 0-9 _ -`,
    );
  }
}

/** The subject a request for `op` in `cluster` is sent to. */
export function apiSubject(cluster: string, op: string, channel: Channel = 'api'): string {
  assertClusterName(cluster);
  if (!TOKEN.test(op)) throw new RangeError(`op ${JSON.stringify(op)} is not a subject token`);
  return `understudy.${cluster}.${channel}.${op}`;
}

/**
 * The subject a primary publishes on once it listens on `channel`: clients waiting out a
 * failover retry at once instead of at their next backoff. Outside {@link apiWildcard}.
 */
export function listeningSubject(cluster: string, channel: Channel = 'api'): string {
  assertClusterName(cluster);
  return `understudy.${cluster}.listening.${channel}`;
}

/** The wildcard subject the primary of `cluster` subscribes to. */
export function apiWildcard(cluster: string, channel: Channel = 'api'): string {
  assertClusterName(cluster);
  return `understudy.${cluster}.${channel}.*`;
}

/** The op of a subject under {@link apiWildcard}, or undefined for any other subject. */
export function opOfSubject(
  cluster: string,
  subject: string,
  channel: Channel = 'api',
): string | undefined {
  const prefix = `understudy.${cluster}.${channel}.`;
  if (!subject.startsWith(prefix)) return undefined;
  const op = subject.slice(prefix.length);
  return op.length > 0 && !op.includes('.') ? op : undefined;
}
