import { describe, expect, it } from 'vitest';
import {
  createActor,
  fromCallback,
  fromPromise,
  initialTransition,
  SimulatedClock,
  transition,
  type SnapshotFrom,
} from 'xstate';
import {
  masterNodeMachine,
  type MasterNodeEvent,
  type MasterNodeInput,
} from '../../machines/masterNode.machine.ts';
import type { CampaignResult, LeaderView } from '../../src/ports/elector.ts';

const input: MasterNodeInput = {
  nodeId: 'n1',
  maxLagForPromotion: 100,
  campaignBaseDelayMs: 50,
  campaignDelayPerEntryMs: 2,
  campaignMaxDelayMs: 1000,
  retryDelayMs: 500,
};

type Snapshot = SnapshotFrom<typeof masterNodeMachine>;
type AnyEvent = MasterNodeEvent | { type: string; output?: unknown; error?: unknown };

const other: LeaderView = { nodeId: 'n2', address: 'x', epoch: 7 };
const self = (epoch: number): LeaderView => ({ nodeId: 'n1', address: 'x', epoch });

/** Sends events through the pure transition function. */
function drive(snapshot: Snapshot, ...events: AnyEvent[]): Snapshot {
  return events.reduce(
    (s, e) => transition(masterNodeMachine, s, e as MasterNodeEvent)[0],
    snapshot,
  );
}

/** Started, and its follower has reported where the log ends (at `appliedSeq`: caught up). */
function started(appliedSeq = 0): Snapshot {
  const [initial] = initialTransition(masterNodeMachine, input);
  return drive(
    initial,
    { type: 'xstate.done.actor.startNode', output: { appliedSeq } },
    { type: 'oplog.progress', appliedSeq, logLastSeq: appliedSeq },
  );
}

describe('masterNode machine (pure transitions)', () => {
  it('starts, then follows as a standby', () => {
    const [initial] = initialTransition(masterNodeMachine, input);
    expect(initial.value).toBe('starting');
    const s = started(42);
    expect(s.value).toEqual({ running: { standby: 'following' } });
    // The applied seq is the committed store's alone: the machine keeps only the lag it decides on.
    expect(s.context).not.toHaveProperty('appliedSeq');
    expect(s.context.lag).toBe(0);
  });

  it('retries a failed start after the retry delay', () => {
    const [initial] = initialTransition(masterNodeMachine, input);
    const failed = drive(initial, { type: 'xstate.error.actor.startNode', error: new Error('x') });
    expect(failed.value).toBe('startFailed');
    expect(failed.context.lastFault).toBe('xstate.error.actor.startNode: x');
    expect(drive(failed, { type: 'xstate.after.retryDelay.masterNode.startFailed' }).value).toBe(
      'starting',
    );
  });

  it('waits to campaign only when the leader key is gone and it is caught up', () => {
    let s = started(10);
    s = drive(s, { type: 'leader.changed', leader: other });
    expect(s.value).toEqual({ running: { standby: 'following' } });
    s = drive(s, { type: 'oplog.progress', appliedSeq: 10, logLastSeq: 500 });
    s = drive(s, { type: 'leader.changed', leader: null });
    expect(s.value).toEqual({ running: { standby: 'following' } }); // lag 490 > 100
    s = drive(s, { type: 'oplog.progress', appliedSeq: 450, logLastSeq: 500 });
    expect(s.value).toEqual({ running: { standby: 'awaitingCampaign' } });
  });

  it('does not campaign before its follower has reported where the log ends', () => {
    const [initial] = initialTransition(masterNodeMachine, input);
    let s = drive(
      initial,
      { type: 'xstate.done.actor.startNode', output: { appliedSeq: 0 } },
      { type: 'leader.changed', leader: null },
    );
    // Restarted empty, the key gone: lag 0 is not yet a lag.
    expect(s.value).toEqual({ running: { standby: 'following' } });
    s = drive(s, { type: 'oplog.progress', appliedSeq: 0, logLastSeq: 50_000 });
    expect(s.value).toEqual({ running: { standby: 'following' } });
    s = drive(s, { type: 'oplog.progress', appliedSeq: 49_950, logLastSeq: 50_000 });
    expect(s.value).toEqual({ running: { standby: 'awaitingCampaign' } });
  });

  it('does not campaign while cut off from the log, and stops waiting to when it falls behind or is cut off', () => {
    let s = started(10);
    s = drive(s, {
      type: 'oplog.progress',
      appliedSeq: 10,
      logLastSeq: 10,
      cutOff: 'cannot read the log: timeout',
    });
    s = drive(s, { type: 'leader.changed', leader: null });
    expect(s.value).toEqual({ running: { standby: 'following' } });
    expect(s.context.logCutOff).toBe('cannot read the log: timeout');
    s = drive(s, { type: 'oplog.progress', appliedSeq: 10, logLastSeq: 10 });
    expect(s.value).toEqual({ running: { standby: 'awaitingCampaign' } });
    // Passed-over messages arrive while it waits: lag 200 > 100, back to following.
    s = drive(s, { type: 'oplog.progress', appliedSeq: 10, logLastSeq: 210 });
    expect(s.value).toEqual({ running: { standby: 'following' } });
    s = drive(s, { type: 'oplog.progress', appliedSeq: 10, logLastSeq: 10 });
    expect(s.value).toEqual({ running: { standby: 'awaitingCampaign' } });
    s = drive(s, { type: 'oplog.progress', appliedSeq: 10, logLastSeq: 10, cutOff: 'x' });
    expect(s.value).toEqual({ running: { standby: 'following' } });
  });

  it('does not campaign after a verification that asked for a full sync', () => {
    let s = started(0);
    s = drive(s, { type: 'verify.done', healthy: false, needsFullSync: false });
    s = drive(s, { type: 'leader.changed', leader: null });
    expect(s.value).toEqual({ running: { standby: 'following' } });
    s = drive(s, { type: 'verify.done', healthy: false, needsFullSync: true });
    expect(s.value).toEqual({ running: 'syncing' });
  });

  it('gives up waiting when a leader appears', () => {
    let s = started(0);
    s = drive(s, { type: 'leader.changed', leader: null });
    expect(s.value).toEqual({ running: { standby: 'awaitingCampaign' } });
    s = drive(s, { type: 'leader.changed', leader: other });
    expect(s.value).toEqual({ running: { standby: 'following' } });
  });

  it('campaigns, promotes and serves; a lost campaign returns to standby', () => {
    let s = started(5);
    s = drive(
      s,
      { type: 'leader.changed', leader: null },
      { type: 'xstate.after.campaignDelay.masterNode.running.standby.awaitingCampaign' },
    );
    expect(s.value).toEqual({ running: { candidate: 'campaigning' } });
    const lost = drive(s, {
      type: 'xstate.done.actor.campaign',
      output: { won: false, leader: other },
    });
    expect(lost.value).toEqual({ running: { standby: 'following' } });
    expect(lost.context.leader).toEqual(other);

    s = drive(s, { type: 'xstate.done.actor.campaign', output: { won: true, epoch: 9 } });
    expect(s.value).toEqual({ running: { candidate: 'promoting' } });
    expect(s.context.epoch).toBe(9);
    s = drive(s, { type: 'xstate.done.actor.promote', output: { epoch: 9, appliedSeq: 6 } });
    expect(s.value).toEqual({ running: 'primary' });
    expect(s.context).toMatchObject({ lag: 0, logLastSeq: 6, promotions: 1 });
    // Its own leader key does not fence it.
    s = drive(s, { type: 'leader.changed', leader: self(9) });
    expect(s.value).toEqual({ running: 'primary' });
  });

  const primary = (): Snapshot =>
    drive(
      started(0),
      { type: 'leader.changed', leader: null },
      { type: 'xstate.after.campaignDelay.masterNode.running.standby.awaitingCampaign' },
      { type: 'xstate.done.actor.campaign', output: { won: true, epoch: 3 } },
      { type: 'xstate.done.actor.promote', output: { epoch: 3, appliedSeq: 1 } },
    );

  it.each<[string, AnyEvent]>([
    ['a fence rejection', { type: 'oplog.fenced', reason: 'wrong last sequence' }],
    ['a lost lease', { type: 'lease.lost', reason: 'deadline passed' }],
    ['the leader key gone', { type: 'leader.changed', leader: null }],
    ['another leader', { type: 'leader.changed', leader: other }],
    ['its own key with another epoch', { type: 'leader.changed', leader: self(4) }],
  ])('a primary is fenced by %s, then follows again', (_name, event) => {
    let s = drive(primary(), event);
    expect(s.value).toEqual({ running: 'fenced' });
    expect(s.context.fences).toBe(1);
    s = drive(s, { type: 'xstate.done.actor.stepDown', output: { appliedSeq: 12 } });
    expect(s.value).toMatchObject({ running: { standby: expect.any(String) as unknown } });
    expect(s.context.lag).toBe(0);
  });

  it('a failed promotion is treated as a fence', () => {
    let s = drive(
      primary(),
      { type: 'oplog.fenced', reason: 'x' },
      { type: 'xstate.done.actor.stepDown', output: { appliedSeq: 1 } },
      { type: 'leader.changed', leader: null },
      { type: 'xstate.after.campaignDelay.masterNode.running.standby.awaitingCampaign' },
      { type: 'xstate.done.actor.campaign', output: { won: true, epoch: 5 } },
    );
    s = drive(s, { type: 'xstate.error.actor.promote', error: new Error('fenced') });
    expect(s.value).toEqual({ running: 'fenced' });
  });

  it('a stopping primary hands over first; a standby stops at once', () => {
    let s = drive(primary(), { type: 'node.stop' });
    expect(s.value).toEqual({ running: 'handingOver' });
    s = drive(s, { type: 'xstate.done.actor.handOver', output: { appliedSeq: 3 } });
    expect(s.value).toBe('stopping');
    s = drive(s, { type: 'xstate.done.actor.shutdown' });
    expect(s.value).toBe('stopped');
    expect(s.status).toBe('done');
    expect(drive(started(0), { type: 'node.stop' }).value).toBe('stopping');
  });

  it('a full sync that fails is retried after the retry delay', () => {
    let s = drive(started(0), { type: 'oplog.needsSync', reason: 'not retained' });
    expect(s.value).toEqual({ running: 'syncing' });
    s = drive(s, { type: 'xstate.error.actor.fullSync', error: new Error('x') });
    expect(s.value).toEqual({ running: 'syncFailed' });
    s = drive(s, { type: 'xstate.after.retryDelay.masterNode.running.syncFailed' });
    expect(s.value).toEqual({ running: 'syncing' });
    s = drive(s, { type: 'xstate.done.actor.fullSync', output: { appliedSeq: 1000 } });
    expect(s.value).toEqual({ running: { standby: 'following' } });
    expect(s.context).toMatchObject({ lag: 0, logLastSeq: 1000 });
  });
});

describe('masterNode machine (actors on a simulated clock)', () => {
  /** Runs the machine with fake actors; returns the actor, the clock and a leader setter. */
  function run(appliedSeq: number, logLastSeq: number) {
    const clock = new SimulatedClock();
    let setLeader: (leader: LeaderView | null) => void = () => undefined;
    const campaigns: number[] = [];
    const machine = masterNodeMachine.provide({
      actors: {
        startNode: fromPromise(() => Promise.resolve({ appliedSeq })),
        watchLeader: fromCallback(({ sendBack }) => {
          setLeader = (leader) => sendBack({ type: 'leader.changed', leader });
        }),
        followLog: fromCallback(({ sendBack }) => {
          sendBack({ type: 'oplog.progress', appliedSeq, logLastSeq });
        }),
        campaign: fromPromise<CampaignResult, { nodeId: string }>(() => {
          campaigns.push(clock.now());
          return new Promise(() => undefined);
        }),
      },
    });
    const actor = createActor(machine, { input, clock });
    actor.start();
    return { actor, clock, campaigns, setLeader: (l: LeaderView | null) => setLeader(l) };
  }

  it('a standby further behind waits longer before campaigning', async () => {
    const near = run(100, 100);
    const far = run(100, 150);
    await Promise.resolve(); // let startNode resolve
    await new Promise((r) => setImmediate(r));
    near.setLeader(null);
    far.setLeader(null);
    near.clock.increment(49);
    far.clock.increment(149);
    expect(near.campaigns).toEqual([]);
    expect(far.campaigns).toEqual([]);
    near.clock.increment(1); // base 50 ms
    far.clock.increment(1); // 50 + 50 entries * 2 ms
    expect(near.actor.getSnapshot().value).toEqual({ running: { candidate: 'campaigning' } });
    expect(far.actor.getSnapshot().value).toEqual({ running: { candidate: 'campaigning' } });
    expect(near.campaigns).toHaveLength(1);
    expect(far.campaigns).toHaveLength(1);
    near.actor.stop();
    far.actor.stop();
  });

  it('a lease lost while promoting fences the node and stops the promotion', async () => {
    const clock = new SimulatedClock();
    let loseLease: (reason: string) => void = () => undefined;
    let promotion: AbortSignal | undefined;
    const machine = masterNodeMachine.provide({
      actors: {
        startNode: fromPromise(() => Promise.resolve({ appliedSeq: 0 })),
        watchLeader: fromCallback(({ sendBack }) => {
          sendBack({ type: 'leader.changed', leader: null });
        }),
        followLog: fromCallback(({ sendBack }) => {
          sendBack({ type: 'oplog.progress', appliedSeq: 0, logLastSeq: 0 });
        }),
        campaign: fromPromise<CampaignResult, { nodeId: string }>(() =>
          Promise.resolve({ won: true, epoch: 3 }),
        ),
        promote: fromPromise<
          { epoch: number; appliedSeq: number },
          { nodeId: string; epoch: number }
        >(({ signal }) => {
          promotion = signal;
          return new Promise(() => undefined);
        }),
        watchLease: fromCallback(({ sendBack }) => {
          loseLease = (reason) => sendBack({ type: 'lease.lost', reason });
        }),
        stepDown: fromPromise(() => new Promise<{ appliedSeq: number }>(() => undefined)),
      },
    });
    const actor = createActor(machine, { input, clock });
    actor.start();
    await new Promise((r) => setImmediate(r));
    clock.increment(input.campaignBaseDelayMs);
    await new Promise((r) => setImmediate(r));
    expect(actor.getSnapshot().value).toEqual({ running: { candidate: 'promoting' } });
    loseLease('lease deadline passed');
    expect(actor.getSnapshot().value).toEqual({ running: 'fenced' });
    expect(actor.getSnapshot().context.lastFault).toBe('lease deadline passed');
    expect(promotion?.aborted).toBe(true);
    actor.stop();
  });
});
