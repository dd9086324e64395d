import type { Actor, SnapshotFrom } from 'xstate';
import type {
  masterNodeMachine,
  MasterNodeContext,
  NodeRole,
} from '../../machines/masterNode.machine.ts';
import { roleOfStateValue } from '../../machines/nodeRole.ts';
import type { LeaderView } from '../ports/elector.ts';
import type { CheckpointStats } from './checkpoints/checkpointStats.ts';
import type { VerificationStats } from '../admin/verification.ts';

/** One node's view of itself, for `status`, `/status` and tests. */
export interface NodeStatus {
  readonly nodeId: string;
  readonly role: NodeRole;
  /** This node's epoch when primary; otherwise the current leader's, 0 when unknown. */
  readonly epoch: number;
  readonly appliedSeq: number;
  readonly logLastSeq: number;
  readonly leader: LeaderView | null;
  readonly lastFault: string | undefined;
  readonly promotions: number;
  readonly fences: number;
  /** Stream messages passed over since start because they were no batches of entries. */
  readonly skipped: number;
  /** Entries passed over since start because no elected primary wrote them (foreign). */
  readonly foreign: number;
  /** Verification and full-sync counters (a copy). */
  readonly verification: VerificationStats;
  /** While starting: the dependency the node is waiting for (e.g. `etcd at http://...`). */
  readonly waitingFor?: string;
  /** Why the node refuses to become eligible (no state it may serve); absent when it does not. */
  readonly failClosed?: string;
  /** Checkpoint counters and the newest checkpoint known (a copy). */
  readonly checkpoints?: CheckpointStats;
  /** Entries this node is behind the log (`logLastSeq - appliedSeq`; passed-over messages count). */
  readonly lag: number;
  /** Why this node cannot read the log now (it is then neither ready nor eligible). */
  readonly cutOff?: string;
  /** Why the node refused to start or stopped because it cannot serve. */
  readonly refused?: string;
}

export type MasterNodeActor = Actor<typeof masterNodeMachine>;

/** The role a machine snapshot stands for (the mapping `understudy inspect` uses too). */
export function roleOf(snapshot: SnapshotFrom<typeof masterNodeMachine>): NodeRole {
  return roleOfStateValue(snapshot.value, snapshot.status);
}

/** The role a member record shows: the node's, or `failedClosed` while it refuses to start. */
export type MemberRole = NodeRole | 'failedClosed';

/** This node's epoch when primary; otherwise the current leader's, 0 when unknown. */
export function currentEpoch(role: MemberRole, context: MasterNodeContext): number {
  return role === 'primary' ? context.epoch : (context.leader?.epoch ?? 0);
}

/** The status of node `nodeId` in `role`, from its machine's context and committed state. */
export function nodeStatus(
  nodeId: string,
  role: NodeRole,
  context: MasterNodeContext,
  appliedSeq: number,
  passedOver: { readonly skipped: number; readonly foreign: number },
  verification: VerificationStats,
  waitingFor?: string,
  checkpoints?: CheckpointStats,
  refused?: string,
): NodeStatus {
  const logLastSeq = Math.max(context.logLastSeq, appliedSeq);
  return {
    ...(refused === undefined ? {} : { refused }),
    ...(checkpoints?.failClosed === undefined ? {} : { failClosed: checkpoints.failClosed }),
    ...(checkpoints === undefined ? {} : { checkpoints: { ...checkpoints } }),
    nodeId,
    role,
    epoch: currentEpoch(role, context),
    appliedSeq,
    logLastSeq,
    lag: role === 'primary' ? 0 : logLastSeq - appliedSeq,
    ...(context.logCutOff === undefined || role === 'primary' ? {} : { cutOff: context.logCutOff }),
    leader: context.leader ?? null,
    lastFault: context.lastFault,
    promotions: context.promotions,
    fences: context.fences,
    skipped: passedOver.skipped,
    foreign: passedOver.foreign,
    verification: { ...verification },
    ...(waitingFor === undefined ? {} : { waitingFor }),
  };
}
