/**
 * NATS subjects of the client API, one per cluster and operation:
 * `understudy.<cluster>.api.<op>`. Only the primary subscribes (to
 * `understudy.<cluster>.api.*`, in the queue group {@link API_QUEUE_GROUP}): the queue group is
 * the fallback for a client that does not know the current primary yet. A primary also serves
 * its term's own subjects, `understudy.<cluster>.api.e<epoch>.<op>` ({@link termSubject}), and
 * answers `understudy.<cluster>.api.term.current` ({@link currentTermSubject}) with its epoch:
 * a client addresses the current term's primary, so a paused (SIGSTOP) former primary whose
 * subscriptions NATS still holds gets none of its requests. A request nobody subscribes to gets
 * NATS "no responders".
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

/** The subject only the primary of term `epoch` serves `op` on (outside {@link apiWildcard}). */
export function termSubject(cluster: string, epoch: number, op: string): string {
  const subject = apiSubject(cluster, op);
  return `${termWildcard(cluster, epoch).slice(0, -1)}${subject.slice(subject.lastIndexOf('.') + 1)}`;
}

/** The wildcard the primary of term `epoch` subscribes to (see {@link termSubject}). */
export function termWildcard(cluster: string, epoch: number): string {
  assertClusterName(cluster);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`bad epoch ${epoch}`);
  return `understudy.${cluster}.api.e${epoch}.*`;
}

/**
 * The subject every serving primary answers with its epoch (no queue group: a paused one does
 * not answer, so the first answer comes from one that runs).
 */
export function currentTermSubject(cluster: string): string {
  assertClusterName(cluster);
  return `understudy.${cluster}.api.term.current`;
}

/**
 * The name group `group` of a cluster with `groups` groups runs under: its subjects, OpLog
 * stream, leader key and checkpoints are those of a cluster of that name. A cluster of one group
 * keeps its own name (it is exactly the cluster of before groups); group g of several is
 * `<cluster>-g<g>`.
 */
export function groupCluster(cluster: string, group: number, groups: number): string {
  assertClusterName(cluster);
  if (!Number.isSafeInteger(group) || group < 0 || group >= groups) {
    throw new RangeError(`group ${group} is not one of 0..${groups - 1}`);
  }
  return groups === 1 ? cluster : `${cluster}-g${group}`;
}
