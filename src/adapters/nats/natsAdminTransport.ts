/**
 * The admin channel between nodes over NATS core request/reply, on
 * `understudy.<cluster>.admin.<op>`. Only the serving primary subscribes (in a queue group, as
 * the client API does), so a standby's verification round or full-sync request reaches the
 * primary or gets "no responders". Same ports as the client API: {@link ApiServerTransport}
 * and {@link ApiClientTransport}.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { apiSubject } from '../../api/subjects.ts';
import type { ApiClientTransport, ApiServerTransport } from '../../ports/apiTransport.ts';
import { createNatsApiClientTransport, createNatsApiServerTransport } from './natsApiTransport.ts';

/** The queue group every serving primary subscribes to the admin subjects in. */
export const ADMIN_QUEUE_GROUP = 'understudy-admin';

/** The subject an admin request for `op` in `cluster` is sent to. */
export function adminSubject(cluster: string, op: string): string {
  return apiSubject(cluster, op, 'admin');
}

export interface NatsAdminOptions {
  readonly nc: NatsConnection;
  readonly cluster: string;
  /** Called when a reply cannot be sent. */
  readonly onReplyError?: (op: string, error: unknown) => void;
}

/**
 * The largest reply the connection carries (bytes), less a margin for headers: what the
 * primary may put in one admin reply.
 */
export function maxAdminReplyBytes(nc: NatsConnection): number {
  return Math.max(1024, (nc.info?.max_payload ?? 1024 * 1024) - 4096);
}

/** The primary's side: listens on the cluster's admin subjects. */
export function createNatsAdminServerTransport(options: NatsAdminOptions): ApiServerTransport {
  return createNatsApiServerTransport({ ...options, channel: 'admin', queue: ADMIN_QUEUE_GROUP });
}

/** A standby's side: one request per call on the cluster's admin subjects. */
export function createNatsAdminClientTransport(options: NatsAdminOptions): ApiClientTransport {
  return createNatsApiClientTransport({
    nc: options.nc,
    cluster: options.cluster,
    channel: 'admin',
  });
}
