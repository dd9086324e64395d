// Model-based coverage of the node machine: @xstate/graph walks every state reachable with
// the events the runtime can send, and the test checks that every state node and every
// transition of the definition is taken by some path.
import { getAdjacencyMap, getStateNodes } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import type { AnyStateNode, SnapshotFrom } from 'xstate';
import { masterNodeMachine, type MasterNodeEvent } from '../../machines/masterNode.machine.ts';

type Snapshot = SnapshotFrom<typeof masterNodeMachine>;

const other = { nodeId: 'n2', address: 'x', epoch: 7 };
const rawEvents: { type: string; [k: string]: unknown }[] = [
  { type: 'leader.changed', leader: null },
  { type: 'leader.changed', leader: other },
  { type: 'leader.changed', leader: { nodeId: 'n1', address: 'x', epoch: 3 } },
  { type: 'leader.changed', leader: { nodeId: 'n1', address: 'x', epoch: 4 } },
  { type: 'oplog.progress', appliedSeq: 10, logLastSeq: 10 },
  { type: 'oplog.progress', appliedSeq: 10, logLastSeq: 500 },
  { type: 'oplog.needsSync', reason: 'gap' },
  { type: 'verify.done', healthy: true, needsFullSync: false },
  { type: 'verify.done', healthy: false, needsFullSync: false },
  { type: 'verify.done', healthy: false, needsFullSync: true },
  { type: 'oplog.fenced', reason: 'wrong last sequence' },
  { type: 'lease.lost', reason: 'deadline' },
  { type: 'node.stop' },
  { type: 'node.switchover' },
  { type: 'node.switchover', target: 'n2' },
  { type: 'leader.changed', leader: { ...other, handoverTo: 'n1' } },
  { type: 'xstate.done.actor.startNode', output: { appliedSeq: 10 } },
  { type: 'xstate.error.actor.startNode', error: 'x' },
  // Another process holds the node's id (DuplicateNodeIdError is marked fatal).
  { type: 'xstate.error.actor.startNode', error: { fatal: true } },
  { type: 'xstate.done.actor.fullSync', output: { appliedSeq: 10 } },
  { type: 'xstate.error.actor.fullSync', error: 'x' },
  { type: 'xstate.done.actor.campaign', output: { won: true, epoch: 3 } },
  { type: 'xstate.done.actor.campaign', output: { won: false, leader: other } },
  { type: 'xstate.error.actor.campaign', error: 'x' },
  { type: 'xstate.done.actor.promote', output: { epoch: 3, appliedSeq: 11 } },
  { type: 'xstate.error.actor.promote', error: 'x' },
  { type: 'xstate.done.actor.stepDown', output: { appliedSeq: 11 } },
  { type: 'xstate.error.actor.stepDown', error: 'x' },
  { type: 'xstate.done.actor.handOver', output: { appliedSeq: 11 } },
  { type: 'xstate.error.actor.handOver', error: 'x' },
  { type: 'xstate.done.actor.shutdown' },
  { type: 'xstate.error.actor.shutdown', error: 'x' },
  { type: 'xstate.after.retryDelay.masterNode.startFailed' },
  { type: 'xstate.after.retryDelay.masterNode.running.syncFailed' },
  { type: 'xstate.after.campaignDelay.masterNode.running.standby.awaitingCampaign' },
];
const events = rawEvents as unknown as MasterNodeEvent[];

/** A bounded abstraction: the state value plus what the guards read. */
function serialize(s: Snapshot): string {
  const { leader, epoch, lag, maxLagForPromotion } = s.context;
  const leaderKind =
    leader === undefined
      ? 'unknown'
      : leader === null
        ? 'none'
        : leader.nodeId === 'n1' && leader.epoch === epoch
          ? 'self'
          : 'other';
  return JSON.stringify([
    s.value,
    leaderKind,
    lag <= maxLagForPromotion,
    s.context.verificationHealthy,
    s.context.switchover !== undefined,
  ]);
}

describe('masterNode machine model', () => {
  const options = {
    input: {
      nodeId: 'n1',
      maxLagForPromotion: 100,
      campaignBaseDelayMs: 50,
      campaignDelayPerEntryMs: 2,
      campaignMaxDelayMs: 1000,
      retryDelayMs: 500,
    },
    events,
    serializeState: (s: Snapshot) => serialize(s),
  };
  // @xstate/graph's declaration of AdjacencyMap does not resolve: state its shape here.
  const adjacency = getAdjacencyMap(masterNodeMachine, options) as unknown as Record<
    string,
    { state: Snapshot; transitions: Record<string, { event: MasterNodeEvent; state: Snapshot }> }
  >;
  const edges = Object.values(adjacency).flatMap(({ state, transitions }) =>
    Object.values(transitions).map((t) => ({ from: state, event: t.event, to: t.state })),
  );

  it('reaches every state node', () => {
    const reached = new Set<string>();
    for (const { from, to } of edges) {
      for (const s of [from, to]) for (const node of s._nodes) reached.add(node.id);
    }
    const all = getStateNodes(masterNodeMachine.root).map((n) => n.id);
    expect(all.filter((id) => !reached.has(id))).toEqual([]);
  });

  it('takes every transition', () => {
    const taken = new Set<string>();
    const key = (source: AnyStateNode, eventType: string, index: number) =>
      `${source.id} --${eventType}#${index}`;
    for (const { from, event, to } of edges) {
      for (const t of masterNodeMachine.getTransitionData(from, event)) {
        const list = t.source.transitions.get(t.eventType) ?? [];
        taken.add(key(t.source, t.eventType, list.indexOf(t)));
      }
      // Eventless transitions: the source was active before (or just entered) and its target now is.
      for (const node of getStateNodes(masterNodeMachine.root)) {
        (node.always ?? []).forEach((t, i) => {
          const targetIds = (t.target ?? []).map((n) => n.id);
          const nowIn = to._nodes.some((n) => targetIds.includes(n.id));
          const sourceNow = to._nodes.some((n) => n.id === node.id);
          if (nowIn && !sourceNow && from._nodes.some((n) => n.id === node.id)) {
            taken.add(key(node, '', i));
          }
        });
      }
    }
    const all: string[] = [];
    for (const node of getStateNodes(masterNodeMachine.root)) {
      for (const [eventType, list] of node.transitions) {
        list.forEach((_t, i) => all.push(key(node, eventType, i)));
      }
      (node.always ?? []).forEach((_t, i) => all.push(key(node, '', i)));
    }
    expect(all.length).toBeGreaterThan(30);
    expect(all.filter((k) => !taken.has(k))).toEqual([]);
  });

  it('becomes primary only through a won campaign and a written fence', () => {
    const intoPrimary = edges.filter(
      ({ from, to }) => to.matches({ running: 'primary' }) && !from.matches({ running: 'primary' }),
    );
    expect(intoPrimary.length).toBeGreaterThan(0);
    for (const { from, event } of intoPrimary) {
      expect(from.value).toEqual({ running: { candidate: 'promoting' } });
      expect(event.type).toBe('xstate.done.actor.promote');
    }
  });

  it('can stop from every reachable state', () => {
    const next = new Map<string, string[]>();
    for (const { from, to } of edges) {
      const list = next.get(serialize(from)) ?? [];
      list.push(serialize(to));
      next.set(serialize(from), list);
    }
    const canStop = new Set(
      [...next.keys(), ...[...next.values()].flat()].filter((k) => k.startsWith('["stopped"')),
    );
    let grew = true;
    while (grew) {
      grew = false;
      for (const [from, tos] of next) {
        if (!canStop.has(from) && tos.some((t) => canStop.has(t))) {
          canStop.add(from);
          grew = true;
        }
      }
    }
    expect([...next.keys()].filter((k) => !canStop.has(k))).toEqual([]);
  });
});
