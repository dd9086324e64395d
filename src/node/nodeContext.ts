import type {
  MasterNodeContext,
  MasterNodeEvent,
  NodeRole,
} from '../../machines/masterNode.machine.ts';
import type { VerificationStats } from '../admin/verification.ts';
import type { CheckpointStats } from './checkpoints/checkpointStats.ts';
import type { MemberPublisher } from './actors/memberPublisher.ts';
import type { NodeRuntimeConfig, NodeRuntimeDeps } from './nodeRuntimeConfig.ts';
import type { MasterNodeActor, MemberRole } from './nodeStatus.ts';
import type { OtherKeyWatch } from './otherKeyWatch.ts';
import type { LogState } from '../domain/decider.ts';
import type { AnyNodeDomain } from './nodeDomain.ts';
import type { NodeStore } from './state/committedStore.ts';
import type { ElectionChecks } from './state/electionChecks.ts';
import type { NodeLease } from './state/nodeLease.ts';
import type { PrimaryTerm } from './state/primaryTerm.ts';
import type { ReadLeases } from './state/readLeases.ts';
import type { Waiting } from './waitingFor.ts';

/**
 * What the actors may ask of the machine that runs them (filled in by `NodeRuntime` once its
 * actor exists): its context, the node's role, and the way to send a stop or switchover.
 */
export interface NodeMachine {
  /** The machine's actor (a switchover subscribes to it). */
  actor(): MasterNodeActor;
  /** The machine's context now. */
  context(): MasterNodeContext;
  /** The node's role now. */
  role(): NodeRole;
  /** The role the member record shows: `failedClosed` while the node refuses to become eligible. */
  memberRole(): MemberRole;
  /** Sends a stop or switchover, so the serve actor leaves its in-flight writes to `handOver`. */
  requestHandover(event: MasterNodeEvent): void;
}

/**
 * One node's collaborators, built once by `NodeRuntime` and handed to every actor as `ctx`
 * (`{ input, signal, ctx }`): the ports and identity of {@link NodeRuntimeDeps}, the resolved
 * config, and the state the actors share. Each piece has one owner here: the committed state
 * and its `appliedSeq` are `store`'s; whether the lease may still be acted on is `lease`'s; what
 * this node holds as primary is `term`'s. An actor declares what it uses with
 * {@link ActorContext}.
 */
export interface NodeContext extends Omit<NodeRuntimeDeps, 'config' | 'inspect' | 'domain'> {
  readonly config: NodeRuntimeConfig;
  /** The domain the node runs: everything it does to its state goes through it. */
  readonly domain: AnyNodeDomain;
  /** The committed state: the one owner of `appliedSeq`. */
  readonly store: NodeStore;
  /** The lease as this node acts on it: the one owner of "is the lease deadline still ahead". */
  readonly lease: NodeLease;
  /** The writer, the pipeline and the serving/handover flags of the current term as primary. */
  readonly term: PrimaryTerm;
  /** Read leases a primary grants (and the promotion's lease of every object). */
  readonly leases: ReadLeases<LogState>;
  /** The verdicts on `EPOCH` entries' election claims. */
  readonly checks: ElectionChecks;
  /** Verification and full-sync counters (`/status` `verification`). */
  readonly verificationStats: VerificationStats;
  /** Checkpoint counters and the fail-closed reason (`/status` `checkpoints`). */
  readonly checkpointStats: CheckpointStats;
  /** What the node waits for while it starts (`/status` `waitingFor`). */
  readonly waiting: Waiting;
  /** Watches for messages signed under another OpLog key. */
  readonly keyWatch: Pick<OtherKeyWatch, 'passedOver' | 'beforePromotion' | 'stop'>;
  /** Keeps the member record published. */
  readonly members: MemberPublisher;
  /** The machine running the actors. */
  readonly machine: NodeMachine;
}

/**
 * The part of {@link NodeContext} an actor uses: the members `K`, and of the config only the
 * settings `C` (so a test builds just what the actor reads).
 */
export type ActorContext<
  K extends Exclude<keyof NodeContext, 'config'>,
  C extends keyof NodeRuntimeConfig = never,
> = Pick<NodeContext, K> & { readonly config: Pick<NodeRuntimeConfig, C> };
