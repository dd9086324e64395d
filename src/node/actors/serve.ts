import type { MasterNodeEvent } from '../../../machines/masterNode.machine.ts';
import { createApiHandler } from '../../api/handler.ts';
import { API_OPS } from '../../api/schema.ts';
import type { ApiListener } from '../../ports/apiTransport.ts';
import type { TimerHandle } from '../../ports/clock.ts';
import type { CommittedStore } from '../state/committedStore.ts';
import { timeRequests } from '../../observe/metrics.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from '../nodeRuntimeConfig.ts';
import type { PrimaryTerm } from '../state/primaryTerm.ts';
import type { ReadLeases } from '../state/readLeases.ts';
import { WritePipeline } from '../writePipeline.ts';

/**
 * The `serve` actor: answers clients through a write pipeline on `term.writer` (kept in
 * `term`), watches the lease and its deadline (`lease.lost`), reports progress, and runs the
 * admin listener `listenAdmin` opens. Returns its closer, which leaves in-flight writes to a
 * handover when `term.handoverRequested` and fails them otherwise.
 */
export function serve(
  deps: Pick<
    NodeRuntimeDeps,
    'nodeId' | 'elector' | 'clock' | 'apiServer' | 'logger' | 'metrics' | 'brokenForTest'
  >,
  config: Pick<
    NodeRuntimeConfig,
    'progressIntervalMs' | 'eviction' | 'evictionIntervalMs' | 'leaseTtlMs' | 'appendStallMs'
  >,
  store: CommittedStore,
  leases: ReadLeases,
  term: PrimaryTerm,
  listenAdmin: () => () => void,
  epoch: number,
  sendBack: (event: MasterNodeEvent) => void,
): () => void {
  const { elector, clock, apiServer, logger } = deps;
  const writer = term.writer;
  if (writer === undefined) throw new Error('serve without a writer');
  let stopped = false;
  let listener: ApiListener | undefined;
  let deadlineTimer: TimerHandle | undefined;
  let progressTimer: TimerHandle | undefined;
  const fault = (type: 'oplog.fenced' | 'lease.lost', reason: string): void => {
    if (!stopped) sendBack({ type, reason });
  };
  const pipeline = new WritePipeline({
    nodeId: deps.nodeId,
    epoch,
    store,
    writer,
    leaseDeadline: () => elector.leaseDeadline(),
    clock,
    leases,
    eviction: config.eviction,
    evictionIntervalMs: config.evictionIntervalMs,
    onFault: (reason) => fault(reason.startsWith('lease') ? 'lease.lost' : 'oplog.fenced', reason),
    ...(deps.brokenForTest?.refusalsBeforeCommit === true ? { refusalsBeforeCommit: true } : {}),
  });
  term.pipeline = pipeline;
  const unLease = elector.onLeaseLost((reason) => fault('lease.lost', reason));
  const armDeadline = (): void => {
    const wait = Math.max(1, elector.leaseDeadline() - clock.monotonicNow());
    deadlineTimer = clock.setTimeout(() => {
      if (stopped) return;
      if (clock.monotonicNow() >= elector.leaseDeadline())
        fault('lease.lost', 'lease deadline passed');
      else armDeadline();
    }, wait);
  };
  armDeadline();
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
  const closeAdmin = listenAdmin();
  const handler = createApiHandler(pipeline);
  const metrics = deps.metrics;
  apiServer.listen(metrics ? timeRequests(handler, metrics, API_OPS) : handler, { epoch }).then(
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
    unLease();
    deadlineTimer?.clear();
    progressTimer?.clear();
    // A requested handover (stop, switchover) lets what is in flight commit and be answered:
    // handOver drains the pipeline, then closes it. Any other exit fails it now.
    if (!term.handoverRequested) pipeline.close('not primary');
    void listener?.close();
    closeAdmin();
  };
}
