import { assign, fromCallback, fromPromise, not, setup } from 'xstate';
import type { CampaignResult, LeaderView } from '../src/ports/elector.ts';

/** Settings that shape the machine's decisions; the runtime fills them from flags. */
export interface MasterNodeInput {
  readonly nodeId: string;
  /** A standby whose lag (entries) is above this does not campaign. */
  readonly maxLagForPromotion: number;
  /** The least wait (ms) between seeing the leader key gone and campaigning. */
  readonly campaignBaseDelayMs: number;
  /** Extra wait (ms) per entry of lag, so the most caught-up standby usually wins. */
  readonly campaignDelayPerEntryMs: number;
  /** The most a standby waits before campaigning, however far behind (ms). */
  readonly campaignMaxDelayMs: number;
  /** Wait (ms) before a failed full sync or start is tried again. */
  readonly retryDelayMs: number;
}

export interface MasterNodeContext extends MasterNodeInput {
  /** The leader as last observed; null when the leader key is gone; undefined before the first read. */
  readonly leader: LeaderView | null | undefined;
  /**
   * How many entries this node is behind the log, as last reported (`logLastSeq` minus the
   * committed store's applied seq then, at least 0): what the campaign guard and delay decide
   * on. The applied seq itself is the committed store's alone (the runtime's `store`); the
   * machine only hears it in reports (`oplog.progress`, actors' outputs) and keeps the lag.
   */
  readonly lag: number;
  /**
   * The last entry the log holds, as last seen by the follower: at least one entry for every
   * stream message after the last one this node folded entries from, so messages it passed over
   * (another key's, an outsider's) count as lag.
   */
  readonly logLastSeq: number;
  /** Why the follower cannot read the log now (no campaign, not ready); undefined when it can. */
  readonly logCutOff: string | undefined;
  /**
   * False from the start until the follower first reports where the log ends: until then `lag`
   * (0) says nothing, and a standby restarted empty would campaign and answer ready.
   */
  readonly logEndKnown: boolean;
  /** This node's epoch while it is (or was last) primary; 0 if never. */
  readonly epoch: number;
  /** False after a verification round that needed a full sync, until the sync is done. */
  readonly verificationHealthy: boolean;
  /** Why the node last left `primary` or `standby` against its will. */
  readonly lastFault: string | undefined;
  /** How many times this node became primary. */
  readonly promotions: number;
  /** How many times this node was fenced. */
  readonly fences: number;
  /** The hint of the last primary that handed over by name (`LeaderView.handoverTo`); kept after the key is gone. */
  readonly handoverTo: string | undefined;
  /** This node handed over by switchover: it campaigns last until a new leader appears. */
  readonly handedOver: boolean;
  /** The planned switchover in progress (`handingOver` then continues as a standby); undefined when stopping. */
  readonly switchover: { readonly target: string | undefined } | undefined;
}

/** What a follower reports as it folds the log. */
export interface FollowProgress {
  /** The committed store's applied seq when the report was made. */
  readonly appliedSeq: number;
  readonly logLastSeq: number;
  /** Set while the follower cannot read the log (its bounds fail): why. */
  readonly cutOff?: string;
}

/** What promotion produced: the fence is in the log at `appliedSeq`. */
export interface PromotionOutput {
  readonly epoch: number;
  readonly appliedSeq: number;
}

/** Why a node must stop acting as primary. */
export type FenceReason = 'fenced' | 'lease.lost' | 'lease.deadline' | 'leader.changed';

/** Events the machine accepts. The runtime's actors send the `oplog.*`, `leader.*`, `lease.*` ones. */
export type MasterNodeEvent =
  /** The leader key changed (null: it is gone). Sent by the `watchLeader` actor. */
  | { type: 'leader.changed'; leader: LeaderView | null }
  /** The follower folded more entries. */
  | ({ type: 'oplog.progress' } & FollowProgress)
  /** The follower cannot continue from the stream: entries are gone, corrupt or out of order. */
  | { type: 'oplog.needsSync'; reason: string }
  /** A verification round finished; `needsFullSync` asks for `syncing`. */
  | { type: 'verify.done'; healthy: boolean; needsFullSync: boolean }
  /** The primary's write path was rejected by the fence: another primary has written. */
  | { type: 'oplog.fenced'; reason: string }
  /** The lease is gone or its local deadline passed: stop acting as primary now. */
  | { type: 'lease.lost'; reason: string }
  /** Stop the node; a primary hands over first (graceful shutdown). */
  | { type: 'node.stop' }
  /**
   * Planned switchover: a primary hands over (to `target` when named) and stays up as a
   * standby. Ignored in every other state.
   */
  | { type: 'node.switchover'; target?: string };

/** The handover is a planned switchover (the node stays up as a standby), not a stop. */
function switchingOver({ context }: { context: MasterNodeContext }): boolean {
  return context.switchover !== undefined;
}

export const masterNodeMachine = setup({
  types: {
    context: {} as MasterNodeContext,
    events: {} as MasterNodeEvent,
    input: {} as MasterNodeInput,
  },
  actors: {
    /** Connects adapters, starts the lease; resolves with the committed seq the node starts from. */
    startNode: fromPromise<{ appliedSeq: number }, { nodeId: string }>(() => {
      throw new Error('startNode is provided by the runtime');
    }),
    /** Follows the log from the committed store; sends `oplog.progress` / `oplog.needsSync`. */
    followLog: fromCallback<MasterNodeEvent, { nodeId: string }>(() => {
      throw new Error('followLog is provided by the runtime');
    }),
    /** Watches the leader key; sends `leader.changed` at once and on every change. */
    watchLeader: fromCallback<MasterNodeEvent, { nodeId: string }>(() => {
      throw new Error('watchLeader is provided by the runtime');
    }),
    /** Periodic verification against the primary; sends `verify.done`. */
    verify: fromCallback<MasterNodeEvent, { nodeId: string }>(() => () => undefined),
    /** Rebuilds the committed state from a full sync; resolves with its seq. */
    fullSync: fromPromise<{ appliedSeq: number }, { nodeId: string }>(() => {
      throw new Error('fullSync is provided by the runtime');
    }),
    /** One campaign for the leader key. */
    campaign: fromPromise<CampaignResult, { nodeId: string }>(() => {
      throw new Error('campaign is provided by the runtime');
    }),
    /**
     * Drains the log to its end and appends the EPOCH fence. Stopped (the machine leaves
     * `promoting`), it appends nothing more and undoes what it started.
     */
    promote: fromPromise<PromotionOutput, { nodeId: string; epoch: number }>(() => {
      throw new Error('promote is provided by the runtime');
    }),
    /** Sends `lease.lost` once the lease is lost or its local deadline passes (while promoting). */
    watchLease: fromCallback<MasterNodeEvent, { nodeId: string }>(() => {
      throw new Error('watchLease is provided by the runtime');
    }),
    /** Serves clients as primary; sends `oplog.fenced` / `lease.lost`. */
    serve: fromCallback<MasterNodeEvent, { nodeId: string; epoch: number }>(() => {
      throw new Error('serve is provided by the runtime');
    }),
    /** Stops serving: fails pending requests as retryable, drops speculative state. */
    stepDown: fromPromise<{ appliedSeq: number }, { nodeId: string; reason: string }>(() => {
      throw new Error('stepDown is provided by the runtime');
    }),
    /**
     * Planned handover: stop writes, let a standby (`target` when named) catch up, resign the
     * leader key (with the `handoverTo` hint when a target is named). With `keepRunning` the
     * node keeps its connections to follow as a standby.
     */
    handOver: fromPromise<
      { appliedSeq: number },
      { nodeId: string; target: string | undefined; keepRunning: boolean }
    >(() => {
      throw new Error('handOver is provided by the runtime');
    }),
    /** Releases every connection. */
    shutdown: fromPromise<void, { nodeId: string }>(() => {
      throw new Error('shutdown is provided by the runtime');
    }),
  },
  guards: {
    /** The leader key is gone and this node may campaign (caught up enough, verified, not syncing). */
    mayCampaign: ({ context }) =>
      context.leader === null &&
      context.verificationHealthy &&
      context.logCutOff === undefined &&
      context.logEndKnown &&
      context.lag <= context.maxLagForPromotion,
    /**
     * The start failed with an error marked `fatal` (another process runs with this node's id):
     * the node stops instead of retrying.
     */
    startRefused: ({ event }) => {
      const error: unknown = 'error' in event ? event.error : undefined;
      return (
        typeof error === 'object' && error !== null && 'fatal' in error && error.fatal === true
      );
    },
    /** The leader key names someone else, or is gone: a primary must stop. */
    leaderNotSelf: ({ context, event }) =>
      event.type === 'leader.changed' &&
      (event.leader === null ||
        event.leader.nodeId !== context.nodeId ||
        event.leader.epoch !== context.epoch),
  },
  delays: {
    /**
     * Longer for a standby further behind, so the most caught-up one usually wins. After a
     * handover by name, the named node campaigns at once and every other node waits the
     * most; a node that just handed over waits the most too.
     */
    campaignDelay: ({ context }) =>
      context.handoverTo !== undefined
        ? context.handoverTo === context.nodeId
          ? 0
          : context.campaignMaxDelayMs
        : context.handedOver
          ? context.campaignMaxDelayMs
          : Math.min(
              context.campaignMaxDelayMs,
              context.campaignBaseDelayMs + context.lag * context.campaignDelayPerEntryMs,
            ),
    retryDelay: ({ context }) => context.retryDelayMs,
  },
  actions: {
    recordLeader: assign(({ context, event }) => {
      if (event.type !== 'leader.changed') return context;
      const { leader } = event;
      // The hint outlives the key (it matters once the key is gone) until another leader appears.
      if (leader === null) return { leader };
      return {
        leader,
        handoverTo: leader.handoverTo,
        handedOver: leader.nodeId === context.nodeId ? context.handedOver : false,
      };
    }),
    recordProgress: assign(({ context, event }) =>
      event.type === 'oplog.progress'
        ? {
            lag: Math.max(0, event.logLastSeq - event.appliedSeq),
            logLastSeq: Math.max(event.logLastSeq, event.appliedSeq),
            logCutOff: event.cutOff,
            logEndKnown: context.logEndKnown || event.cutOff === undefined,
          }
        : context,
    ),
    /**
     * An actor finished at the committed store's applied seq (its output): the lag against the
     * log's end as last seen. The seq itself is not kept (the store owns it).
     */
    recordApplied: assign(({ context, event }) => {
      const output: unknown = 'output' in event ? event.output : undefined;
      const appliedSeq =
        typeof output === 'object' && output !== null && 'appliedSeq' in output
          ? Number(output.appliedSeq)
          : undefined;
      return appliedSeq === undefined
        ? context
        : { lag: Math.max(0, context.logLastSeq - appliedSeq) };
    }),
    recordFault: assign({
      lastFault: ({ event }) => {
        if ('reason' in event && typeof event.reason === 'string') return event.reason;
        // A failed actor (`xstate.error.actor.<id>`): what failed, and why.
        const error: unknown = 'error' in event ? event.error : undefined;
        return error instanceof Error ? `${event.type}: ${error.message}` : event.type;
      },
    }),
  },
}).createMachine({
  id: 'masterNode',
  context: ({ input }) => ({
    ...input,
    leader: undefined,
    lag: 0,
    logLastSeq: 0,
    logCutOff: undefined,
    logEndKnown: false,
    epoch: 0,
    verificationHealthy: true,
    lastFault: undefined,
    promotions: 0,
    fences: 0,
    handoverTo: undefined,
    handedOver: false,
    switchover: undefined,
  }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        id: 'startNode',
        src: 'startNode',
        input: ({ context }) => ({ nodeId: context.nodeId }),
        onDone: {
          target: 'running',
          actions: 'recordApplied',
        },
        onError: [
          { guard: 'startRefused', target: 'stopping', actions: 'recordFault' },
          { target: 'startFailed', actions: 'recordFault' },
        ],
      },
      on: { 'node.stop': 'stopping' },
    },
    startFailed: {
      after: { retryDelay: 'starting' },
      on: { 'node.stop': 'stopping' },
    },
    running: {
      invoke: {
        id: 'watchLeader',
        src: 'watchLeader',
        input: ({ context }) => ({ nodeId: context.nodeId }),
      },
      on: {
        'leader.changed': { actions: 'recordLeader' },
      },
      initial: 'standby',
      states: {
        standby: {
          invoke: [
            {
              id: 'followLog',
              src: 'followLog',
              input: ({ context }) => ({ nodeId: context.nodeId }),
            },
            { id: 'verify', src: 'verify', input: ({ context }) => ({ nodeId: context.nodeId }) },
          ],
          on: {
            'oplog.progress': { actions: 'recordProgress' },
            'oplog.needsSync': { target: 'syncing', actions: 'recordFault' },
            'verify.done': [
              {
                guard: function needsFullSync({ event }) {
                  return event.needsFullSync;
                },
                target: 'syncing',
                actions: assign({ verificationHealthy: false, lastFault: 'verification' }),
              },
              { actions: assign({ verificationHealthy: ({ event }) => event.healthy }) },
            ],
            'node.stop': '#masterNode.stopping',
          },
          initial: 'following',
          states: {
            following: {
              always: { guard: 'mayCampaign', target: 'awaitingCampaign' },
            },
            awaitingCampaign: {
              // A leader appeared, or this node fell behind or lost the log meanwhile.
              always: { guard: not('mayCampaign'), target: 'following' },
              after: { campaignDelay: '#masterNode.running.candidate' },
            },
          },
        },
        syncing: {
          invoke: {
            id: 'fullSync',
            src: 'fullSync',
            input: ({ context }) => ({ nodeId: context.nodeId }),
            onDone: {
              target: 'standby',
              actions: [
                'recordApplied',
                assign({
                  logLastSeq: ({ context, event }) =>
                    Math.max(context.logLastSeq, event.output.appliedSeq),
                  verificationHealthy: true,
                }),
              ],
            },
            onError: { target: 'syncFailed', actions: 'recordFault' },
          },
          on: { 'node.stop': '#masterNode.stopping' },
        },
        syncFailed: {
          after: { retryDelay: 'syncing' },
          on: { 'node.stop': '#masterNode.stopping' },
        },
        candidate: {
          initial: 'campaigning',
          on: { 'node.stop': '#masterNode.stopping' },
          states: {
            campaigning: {
              invoke: {
                id: 'campaign',
                src: 'campaign',
                input: ({ context }) => ({ nodeId: context.nodeId }),
                onDone: [
                  {
                    guard: function campaignWon({ event }) {
                      return event.output.won;
                    },
                    target: 'promoting',
                    actions: assign({
                      epoch: ({ event }) => (event.output.won ? event.output.epoch : 0),
                    }),
                  },
                  {
                    target: '#masterNode.running.standby',
                    actions: assign({
                      leader: ({ event }) => (event.output.won ? null : event.output.leader),
                    }),
                  },
                ],
                onError: {
                  target: '#masterNode.running.standby',
                  actions: 'recordFault',
                },
              },
            },
            promoting: {
              invoke: [
                {
                  id: 'promote',
                  src: 'promote',
                  input: ({ context }) => ({ nodeId: context.nodeId, epoch: context.epoch }),
                  onDone: {
                    target: '#masterNode.running.primary',
                    actions: assign({
                      lag: 0,
                      logEndKnown: true,
                      logLastSeq: ({ event }) => event.output.appliedSeq,
                      promotions: ({ context }) => context.promotions + 1,
                    }),
                  },
                  onError: { target: '#masterNode.running.fenced', actions: 'recordFault' },
                },
                {
                  id: 'watchLease',
                  src: 'watchLease',
                  input: ({ context }) => ({ nodeId: context.nodeId }),
                },
              ],
              on: {
                'lease.lost': { target: '#masterNode.running.fenced', actions: 'recordFault' },
              },
            },
          },
        },
        primary: {
          invoke: {
            id: 'serve',
            src: 'serve',
            input: ({ context }) => ({ nodeId: context.nodeId, epoch: context.epoch }),
          },
          on: {
            'oplog.progress': { actions: 'recordProgress' },
            'oplog.fenced': { target: 'fenced', actions: 'recordFault' },
            'lease.lost': { target: 'fenced', actions: 'recordFault' },
            'leader.changed': {
              guard: 'leaderNotSelf',
              target: 'fenced',
              actions: ['recordLeader', assign({ lastFault: 'leader.changed' })],
            },
            'node.stop': { target: 'handingOver', actions: assign({ switchover: undefined }) },
            'node.switchover': {
              target: 'handingOver',
              actions: assign({ switchover: ({ event }) => ({ target: event.target }) }),
            },
          },
        },
        handingOver: {
          invoke: {
            id: 'handOver',
            src: 'handOver',
            input: ({ context }) => ({
              nodeId: context.nodeId,
              target: context.switchover?.target,
              keepRunning: context.switchover !== undefined,
            }),
            onDone: [
              {
                guard: switchingOver,
                target: 'standby',
                actions: ['recordApplied', assign({ handedOver: true, switchover: undefined })],
              },
              {
                target: '#masterNode.stopping',
                actions: 'recordApplied',
              },
            ],
            onError: [
              {
                // A switchover that failed midway: step down as if fenced (resign if still held).
                guard: switchingOver,
                target: 'fenced',
                actions: ['recordFault', assign({ switchover: undefined })],
              },
              { target: '#masterNode.stopping', actions: 'recordFault' },
            ],
          },
          on: {
            // A stop during a switchover: finish the handover, then stop.
            'node.stop': { actions: assign({ switchover: undefined }) },
          },
        },
        fenced: {
          entry: assign({ fences: ({ context }) => context.fences + 1 }),
          invoke: {
            id: 'stepDown',
            src: 'stepDown',
            input: ({ context }) => ({
              nodeId: context.nodeId,
              reason: context.lastFault ?? 'fenced',
            }),
            onDone: {
              target: 'standby',
              actions: 'recordApplied',
            },
            onError: { target: 'standby', actions: 'recordFault' },
          },
          on: { 'node.stop': '#masterNode.stopping' },
        },
      },
    },
    stopping: {
      invoke: {
        id: 'shutdown',
        src: 'shutdown',
        input: ({ context }) => ({ nodeId: context.nodeId }),
        onDone: 'stopped',
        onError: { target: 'stopped', actions: 'recordFault' },
      },
    },
    stopped: { type: 'final' },
  },
});

export type MasterNodeMachine = typeof masterNodeMachine;

/** The role a state stands for, as `status` and `/metrics` show it. */
export type NodeRole =
  'starting' | 'standby' | 'syncing' | 'candidate' | 'primary' | 'fenced' | 'stopping' | 'stopped';
