import type { OpLogWriter } from '../../ports/opLog.ts';
import type { LogState } from '../../domain/decider.ts';
import type { WritePipeline } from '../writePipeline.ts';

/**
 * What this node holds while it is primary, shared by the actors of one term: promotion opens
 * the writer, serving writes through the pipeline, step-down and handover close both.
 */
export class PrimaryTerm {
  writer: OpLogWriter | undefined;
  pipeline: WritePipeline<LogState, unknown, unknown, unknown> | undefined;
  /** True while this node is primary and its API listener is up. */
  serving = false;
  /** True only while a stop or switchover event is being sent (see `NodeRuntime`). */
  handoverRequested = false;
}
