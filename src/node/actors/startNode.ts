import { MemberIdTakenError, type MemberRecord } from '../../ports/elector.ts';
import type { ActorContext } from '../nodeContext.ts';
import { UnderstudyError } from '../../domain/model/understudyError.ts';

/**
 * The node must not run: another live process is registered with its id. `fatal`: the machine
 * stops instead of retrying (the CLI exits with code 2).
 */
export class DuplicateNodeIdError extends UnderstudyError {
  override readonly name = 'DuplicateNodeIdError';
  readonly code = 'DUPLICATE_NODE_ID';
  readonly fatal = true;
  constructor(
    readonly nodeId: string,
    /** Where the other process answers (its member record's address). */
    readonly holderAddress: string,
    options?: ErrorOptions,
  ) {
    super(
      `another node is running with id ${nodeId} at ${holderAddress || 'an unknown address'}; refusing to start`,
      options,
    );
  }
}

/** How often a node waiting for its id to be free tries again (ms). */
const CLAIM_RETRY_MS = 250;

/**
 * How long a node waits for the lease of a silent holder of its id to expire: two TTLs + 1 s on
 * its own clock, so that a clock running up to 2.5 times fast still outwaits a dead holder's
 * lease (one TTL from its last keep-alive, on etcd's clock). A live holder is found sooner: it
 * refreshes its record every second. A lease that etcd says has expired (and only waits to be
 * revoked, which etcd does late under load) is a dead holder's, however long that takes.
 */
function claimWaitMs(leaseTtlMs: number): number {
  return 2 * leaseTtlMs + 1000;
}

/**
 * The `startNode` actor: takes a lease and registers the node's id. A member key of this id
 * held by another lease is another process: if that process refreshes its record, or its lease
 * is still unexpired in etcd two TTLs (+1 s) after this node first saw it, it is live and this
 * node refuses to start ({@link DuplicateNodeIdError}); if its lease expires (a process that
 * died), the id is this node's. A holder the elector proves gone (a process of this host that no
 * longer exists: a restart after kill -9 or a crash) is not waited for: the elector revokes its
 * lease and the id is taken at once. Each wait is logged within a second and shown in `/status`
 * (`waiting`).
 */
export async function startNode({
  signal,
  ctx,
}: {
  signal: AbortSignal;
  ctx: ActorContext<
    'elector' | 'clock' | 'logger' | 'nodeId' | 'coordinatorName' | 'members' | 'waiting',
    'leaseTtlMs'
  >;
}): Promise<void> {
  const { elector, clock, logger, nodeId, members, waiting, config } = ctx;
  const coordinator = ctx.coordinatorName ?? 'the coordinator';
  await waiting.for(ctx, `${coordinator} (a lease)`, elector.start());
  signal.throwIfAborted();
  let first: MemberRecord | undefined;
  let deadline = 0;
  let saidExpired = false;
  for (;;) {
    try {
      const gone = await waiting.for(
        ctx,
        `${coordinator} (the member record)`,
        elector.publishMember(members.record('starting')),
      );
      if (gone !== undefined) {
        logger.info(
          { event: 'nodeIdTakenOver', holder: gone.address },
          `node id ${nodeId} was registered at ${gone.address} by a process of this host that is gone: its lease revoked, the id taken without waiting for it to expire`,
        );
      }
      return;
    } catch (err) {
      if (!(err instanceof MemberIdTakenError)) throw err;
      const holder = err.holder;
      const now = clock.monotonicNow();
      if (first === undefined) {
        first = holder;
        deadline = now + claimWaitMs(config.leaseTtlMs);
        logger.warn(
          { event: 'waiting', dependency: 'node id', holder: holder.address },
          `node id ${nodeId} is registered at ${holder.address}: waiting up to ${claimWaitMs(config.leaseTtlMs)} ms for its lease to expire`,
        );
      } else if (
        holder.updatedAt !== first.updatedAt ||
        (now >= deadline && (err.holderLeaseRemainingMs ?? 1) > 0)
      ) {
        throw new DuplicateNodeIdError(nodeId, holder.address, { cause: err });
      } else if (now >= deadline && !saidExpired) {
        saidExpired = true;
        logger.warn(
          { event: 'waiting', dependency: 'node id', holder: holder.address },
          `the lease of node id ${nodeId} at ${holder.address} has expired: waiting for ${coordinator} to revoke it`,
        );
      }
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, CLAIM_RETRY_MS));
    signal.throwIfAborted();
  }
}
