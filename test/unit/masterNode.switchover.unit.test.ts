// Planned switchover in the node machine: primary -> handingOver -> standby, the handover hint
// (`handoverTo`) and the campaign delays it sets, through the pure transition API and on a
// simulated clock.
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
import { MemoryCoordinator } from '../../src/adapters/memory/memoryCoordinator.ts';
import { createMemoryElector } from '../../src/adapters/memory/memoryElector.ts';
import { SimClock } from '../../src/adapters/memory/simClock.ts';
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

const AWAIT_DELAY = 'xstate.after.campaignDelay.masterNode.running.standby.awaitingCampaign';
const other: LeaderView = { nodeId: 'n2', address: 'x', epoch: 7 };
const self = (epoch: number, handoverTo?: string): LeaderView => ({
  nodeId: 'n1',
  address: 'x',
  epoch,
  ...(handoverTo === undefined ? {} : { handoverTo }),
});

function drive(snapshot: Snapshot, ...events: AnyEvent[]): Snapshot {
  return events.reduce(
    (s, e) => transition(masterNodeMachine, s, e as MasterNodeEvent)[0],
    snapshot,
  );
}

function started(nodeId = 'n1'): Snapshot {
  const [initial] = initialTransition(masterNodeMachine, { ...input, nodeId });
  return drive(
    initial,
    { type: 'xstate.done.actor.startNode', output: { appliedSeq: 0 } },
    { type: 'oplog.progress', appliedSeq: 0, logLastSeq: 0 },
  );
}

const primary = (): Snapshot =>
  drive(
    started(),
    { type: 'leader.changed', leader: null },
    { type: AWAIT_DELAY },
    { type: 'xstate.done.actor.campaign', output: { won: true, epoch: 3 } },
    { type: 'xstate.done.actor.promote', output: { epoch: 3, appliedSeq: 1 } },
    { type: 'leader.changed', leader: self(3) },
  );

/** The actions the pure transition asked for (invocations of actors included). */
function invoked(snapshot: Snapshot, event: AnyEvent): { src?: unknown; input?: unknown }[] {
  const [, actions] = transition(masterNodeMachine, snapshot, event as MasterNodeEvent);
  return actions
    .filter((a) => a.type === 'xstate.spawnChild')
    .map((a) => a.params as { src?: unknown; input?: unknown });
}

describe('masterNode machine: planned switchover (pure transitions)', () => {
  it('a primary hands over and follows as a standby, without stopping', () => {
    let s = drive(primary(), { type: 'node.switchover', target: 'n2' });
    expect(s.value).toEqual({ running: 'handingOver' });
    expect(s.context.switchover).toEqual({ target: 'n2' });
    // Its own hint on its key does not fence it.
    s = drive(s, { type: 'leader.changed', leader: self(3, 'n2') });
    expect(s.value).toEqual({ running: 'handingOver' });
    s = drive(s, { type: 'leader.changed', leader: null });
    s = drive(s, { type: 'xstate.done.actor.handOver', output: { appliedSeq: 40 } });
    expect(s.value).toMatchObject({ running: { standby: expect.any(String) as unknown } });
    // The applied seq is the committed store's: the machine keeps the lag against the log's end.
    expect(s.context).not.toHaveProperty('appliedSeq');
    expect(s.context).toMatchObject({
      lag: Math.max(0, s.context.logLastSeq - 40),
      handedOver: true,
      handoverTo: 'n2',
      switchover: undefined,
    });
  });

  it('invokes the handover with the target and keepRunning; a stop does not', () => {
    const viaSwitchover = invoked(primary(), { type: 'node.switchover', target: 'n2' });
    expect(viaSwitchover).toContainEqual(
      expect.objectContaining({ input: { nodeId: 'n1', target: 'n2', keepRunning: true } }),
    );
    const anyTarget = invoked(primary(), { type: 'node.switchover' });
    expect(anyTarget).toContainEqual(
      expect.objectContaining({ input: { nodeId: 'n1', target: undefined, keepRunning: true } }),
    );
    const viaStop = invoked(primary(), { type: 'node.stop' });
    expect(viaStop).toContainEqual(
      expect.objectContaining({ input: { nodeId: 'n1', target: undefined, keepRunning: false } }),
    );
  });

  it('a stop during a switchover finishes the handover, then stops', () => {
    let s = drive(primary(), { type: 'node.switchover' }, { type: 'node.stop' });
    expect(s.value).toEqual({ running: 'handingOver' });
    expect(s.context.switchover).toBeUndefined();
    s = drive(s, { type: 'xstate.done.actor.handOver', output: { appliedSeq: 5 } });
    expect(s.value).toBe('stopping');
  });

  it('a failed switchover steps down as if fenced; a failed stop still stops', () => {
    let s = drive(
      primary(),
      { type: 'node.switchover' },
      { type: 'xstate.error.actor.handOver', error: new Error('etcd gone') },
    );
    expect(s.value).toEqual({ running: 'fenced' });
    expect(s.context.lastFault).toBe('xstate.error.actor.handOver: etcd gone');
    s = drive(s, { type: 'xstate.done.actor.stepDown', output: { appliedSeq: 1 } });
    expect(s.value).toMatchObject({ running: { standby: expect.any(String) as unknown } });
    const stopped = drive(
      primary(),
      { type: 'node.stop' },
      { type: 'xstate.error.actor.handOver', error: new Error('x') },
    );
    expect(stopped.value).toBe('stopping');
  });

  it('is ignored outside primary', () => {
    const standby = started();
    expect(drive(standby, { type: 'node.switchover' }).value).toEqual(standby.value);
    const candidate = drive(
      started(),
      { type: 'leader.changed', leader: null },
      { type: AWAIT_DELAY },
    );
    expect(drive(candidate, { type: 'node.switchover' }).value).toEqual({
      running: { candidate: 'campaigning' },
    });
  });

  it('keeps the hint after the key is gone, and drops it when a leader appears', () => {
    let s = drive(started(), { type: 'leader.changed', leader: { ...other, handoverTo: 'n3' } });
    expect(s.context.handoverTo).toBe('n3');
    s = drive(s, { type: 'leader.changed', leader: null });
    expect(s.context.handoverTo).toBe('n3');
    s = drive(s, { type: 'leader.changed', leader: { nodeId: 'n3', address: 'y', epoch: 9 } });
    expect(s.context.handoverTo).toBeUndefined();
  });

  it('the node that handed over forgets it when another leader appears', () => {
    let s = drive(
      primary(),
      { type: 'node.switchover' },
      { type: 'xstate.done.actor.handOver', output: { appliedSeq: 2 } },
    );
    expect(s.context.handedOver).toBe(true);
    s = drive(s, { type: 'leader.changed', leader: other });
    expect(s.context.handedOver).toBe(false);
  });
});

describe('masterNode machine: campaign delays after a handover (simulated clock)', () => {
  /** A standby with fake actors, caught up (lag 0). */
  function run(nodeId: string) {
    const clock = new SimulatedClock();
    let setLeader: (leader: LeaderView | null) => void = () => undefined;
    const campaigns: number[] = [];
    const machine = masterNodeMachine.provide({
      actors: {
        startNode: fromPromise(() => Promise.resolve({ appliedSeq: 10 })),
        watchLeader: fromCallback(({ sendBack }) => {
          setLeader = (leader) => sendBack({ type: 'leader.changed', leader });
        }),
        followLog: fromCallback(({ sendBack }) => {
          sendBack({ type: 'oplog.progress', appliedSeq: 10, logLastSeq: 10 });
        }),
        campaign: fromPromise<CampaignResult, { nodeId: string }>(() => {
          campaigns.push(clock.now());
          return new Promise(() => undefined);
        }),
      },
    });
    const actor = createActor(machine, { input: { ...input, nodeId }, clock });
    actor.start();
    return { actor, clock, campaigns, setLeader: (l: LeaderView | null) => setLeader(l) };
  }

  it('the named node campaigns at once; the others wait the most', async () => {
    const named = run('n2');
    const bystander = run('n3');
    await new Promise((r) => setImmediate(r)); // let startNode resolve
    const hinted: LeaderView = { nodeId: 'n1', address: 'x', epoch: 3, handoverTo: 'n2' };
    for (const node of [named, bystander]) {
      node.setLeader({ nodeId: 'n1', address: 'x', epoch: 3 });
      node.setLeader(hinted);
      node.setLeader(null);
    }
    named.clock.increment(0);
    expect(named.campaigns).toEqual([0]);
    bystander.clock.increment(999);
    expect(bystander.campaigns).toEqual([]);
    bystander.clock.increment(1);
    expect(bystander.campaigns).toEqual([1000]);
    named.actor.stop();
    bystander.actor.stop();
  });

  it('without a hint a caught-up standby waits only the base delay', async () => {
    const node = run('n3');
    await new Promise((r) => setImmediate(r));
    node.setLeader(other);
    node.setLeader(null);
    node.clock.increment(49);
    expect(node.campaigns).toEqual([]);
    node.clock.increment(1);
    expect(node.campaigns).toEqual([50]);
    node.actor.stop();
  });
});

describe('memory elector: the handover hint', () => {
  it('resign({handoverTo}) shows the hint on the same epoch, then deletes the key', async () => {
    const clock = new SimClock();
    const coord = new MemoryCoordinator(clock);
    const holder = createMemoryElector(coord, { nodeId: 'n1', ttlMs: 5000, clock });
    const watcher = createMemoryElector(coord, { nodeId: 'n2', ttlMs: 5000, clock });
    await holder.start();
    const won = await holder.campaign({ nodeId: 'n1', address: 'a1' });
    expect(won.won).toBe(true);
    const seen: (LeaderView | null)[] = [];
    const stop = watcher.observe((leader) => seen.push(leader));
    await new Promise((r) => setImmediate(r));
    await holder.resign({ handoverTo: 'n2' });
    await new Promise((r) => setImmediate(r));
    const epoch = won.won ? won.epoch : 0;
    expect(seen).toEqual([
      { nodeId: 'n1', address: 'a1', epoch },
      { nodeId: 'n1', address: 'a1', epoch, handoverTo: 'n2' },
      null,
    ]);
    stop();
    await holder.close();
    await watcher.close();
  });
});
