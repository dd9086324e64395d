import type { MasterNodeEvent } from '../../../machines/masterNode.machine.ts';
import type { ApiListener } from '../../ports/apiTransport.ts';
import type { TimerHandle } from '../../ports/clock.ts';
import { timeRequests } from '../../observe/metrics.ts';
import type { ActorContext } from '../nodeContext.ts';
import { WritePipeline } from '../writePipeline.ts';
import { listenAdmin } from './listenAdmin.ts';

/** What the `serve` actor uses of the node's context (the admin listener's part too). */
export type ServeContext = ActorContext<
  | 'nodeId'
  | 'lease'
  | 'clock'
  | 'apiServer'
  | 'logger'
  | 'metrics'
  | 'brokenForTest'
  | 'admin'
  | 'store'
  | 'leases'
  | 'term'
  | 'domain'
  | 'verificationStats',
  | 'progressIntervalMs'
  | 'evictionIntervalMs'
  | 'leaseTtlMs'
  | 'appendStallMs'
  | 'maxSyncGap'
  | 'maxMismatches'
>;

/**
 * The `serve` actor: answers clients through a write pipeline on `term.writer` (kept in
 * `term`), watches the lease (`ctx.lease`: lost, or its deadline passed: `lease.lost`),
 * reports progress, and runs the admin listener ({@link listenAdmin}). Returns its closer, which leaves in-flight writes to a
 * handover when `term.handoverRequested` and fails them otherwise.
 */
export function serve({
  input,
  ctx,
  sendBack,
}: {
  input: { readonly epoch: number };
  ctx: ServeContext;
  sendBack: (event: MasterNodeEvent) => void;
}): () => void {
  const { lease, clock, apiServer, logger, store, leases, term, config, domain } = ctx;
  const { epoch } = input;
  const writer = term.writer;
  if (writer === undefined) throw new Error('serve without a writer');
  let stopped = false;
  let listener: ApiListener | undefined;
  let progressTimer: TimerHandle | undefined;
  const fault = (type: 'oplog.fenced' | 'lease.lost', reason: string): void => {
    if (!stopped) sendBack({ type, reason });
  };
  const pipeline = new WritePipeline({
    nodeId: ctx.nodeId,
    epoch,
    domain,
    store,
    writer,
    lease,
    clock,
    leases,
    evictionIntervalMs: config.evictionIntervalMs,
    onFault: (reason) => fault(reason.startsWith('lease') ? 'lease.lost' : 'oplog.fenced', reason),
    ...(ctx.brokenForTest?.refusalsBeforeCommit === true ? { refusalsBeforeCommit: true } : {}),
  });
  term.pipeline = pipeline;
  const unwatchLease = lease.watch((reason) => fault('lease.lost', reason));
  const appendStallMs = config.appendStallMs ?? config.leaseTtlMs;
  const progress = (): void => {
    sendBack({
      type: 'oplog.progress',
      appliedSeq: store.appliedSeq,
      logLastSeq: store.appliedSeq,
    });
    // An append that is not acknowledged for this long: the log cannot be reached from here.
    const since = pipeline.oldestInFlightSentAt;
    const stalled = since === undefined ? 0 : clock.monotonicNow() - since;
    if (stalled >= appendStallMs) {
      fault('oplog.fenced', `an append has not been acknowledged for ${stalled} ms`);
      return;
    }
    progressTimer = clock.setTimeout(progress, config.progressIntervalMs);
  };
  progressTimer = clock.setTimeout(progress, config.progressIntervalMs);
  const closeAdmin = listenAdmin({ ctx });
  const handler = domain.service.handler(pipeline, (key) => leases.grant(key));
  const metrics = ctx.metrics;
  const timed = metrics ? timeRequests(handler, metrics, domain.service.ops) : handler;
  apiServer.listen(timed, { epoch }).then(
    (l) => {
      if (stopped) void l.close();
      else {
        listener = l;
        term.serving = true;
        logger.info({ event: 'serving', epoch }, 'serving clients');
      }
    },
    (err: unknown) => fault('oplog.fenced', `cannot listen: ${String(err)}`),
  );
  return () => {
    stopped = true;
    term.serving = false;
    unwatchLease();
    progressTimer?.clear();
    // A requested handover (stop, switchover) lets what is in flight commit and be answered:
    // handOver drains the pipeline, then closes it. Any other exit fails it now.
    if (!term.handoverRequested) pipeline.close('not primary');
    void listener?.close();
    closeAdmin();
  };
}
