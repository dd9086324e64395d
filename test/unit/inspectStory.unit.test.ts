// What the inspect page says: one role mapping for the node's /status and the page (pinned
// here for every state of the node machine), the events in words, and, in replay, a recording
// that ends with its machine running marked as the node gone.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AnyStateNode, StateValue } from 'xstate';
import { masterNodeMachine, type NodeRole } from '../../machines/masterNode.machine.ts';
import { roleOfStateValue } from '../../machines/nodeRole.ts';
import { roleOf } from '../../src/node/nodeStatus.ts';
import type { InspectionRecord } from '../../src/observe/inspectionRecord.ts';
import { InspectHub } from '../../src/tools/inspect/inspectHub.ts';
import { eventWords, tellStory } from '../../src/tools/inspect/storyWords.ts';
import { UI_DIR } from '../../src/tools/inspect/inspectServer.ts';

/** Every leaf state of the node machine, as its id and its state value. */
function leaves(node: AnyStateNode, path: string[] = []): { id: string; value: StateValue }[] {
  const children = Object.values(node.states);
  if (children.length === 0) {
    const value = path.reduceRight<StateValue>(
      (inner, key, i) => (i === path.length - 1 ? key : { [key]: inner }),
      path.at(-1) ?? '',
    );
    return [{ id: node.id, value }];
  }
  return children.flatMap((child) => leaves(child, [...path, child.key]));
}

/** The role of every leaf state: the one table both the node and the page go by. */
const ROLES: Record<string, NodeRole> = {
  'masterNode.starting': 'starting',
  'masterNode.startFailed': 'starting',
  'masterNode.running.standby.following': 'standby',
  'masterNode.running.standby.awaitingCampaign': 'standby',
  'masterNode.running.syncing': 'syncing',
  'masterNode.running.syncFailed': 'syncing',
  'masterNode.running.candidate.campaigning': 'candidate',
  'masterNode.running.candidate.promoting': 'candidate',
  'masterNode.running.primary': 'primary',
  'masterNode.running.handingOver': 'primary',
  'masterNode.running.fenced': 'fenced',
  'masterNode.stopping': 'stopping',
  'masterNode.stopped': 'stopped',
};

describe('one role mapping', () => {
  it("the node's /status role and the inspect page's agree for every state of the machine", () => {
    const all = leaves(masterNodeMachine.root);
    expect(all.map((l) => l.id).sort()).toEqual(Object.keys(ROLES).sort());
    for (const { id, value } of all) {
      const snapshot = masterNodeMachine.resolveState({
        value,
        context: {} as never,
      });
      const node = roleOf(snapshot);
      const page = tellStory(snapshotRecord(value, snapshot.status), true).role;
      expect({ id, node, page }).toEqual({ id, node: ROLES[id], page: ROLES[id] });
      expect(roleOfStateValue(value, snapshot.status)).toBe(ROLES[id]);
    }
  });

  it('the page has no role mapping of its own: it shows the role the server put on the record', () => {
    const page = readdirSync(UI_DIR)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(`${UI_DIR}${f}`, 'utf8'))
      .join('\n');
    expect(page).not.toMatch(/function roleOf|roleOfStateValue|'primary':|case 'primary'/);
    expect(page).toMatch(/root\.role = record\.role/);
  });

  it('role, star (primary) and epoch come from the same snapshot record', () => {
    const primary = tellStory(
      snapshotRecord({ running: 'primary' }, 'active', { epoch: 7, leader: { epoch: 6 } }),
      true,
    );
    expect([primary.role, primary.epoch]).toEqual(['primary', 7]);
    const standby = tellStory(
      snapshotRecord({ running: { standby: 'following' } }, 'active', {
        epoch: 3,
        leader: { epoch: 7 },
      }),
      true,
    );
    expect([standby.role, standby.epoch]).toEqual(['standby', 7]);
    // Not a master node (a WebSocket client's machine): no role.
    expect(tellStory(snapshotRecord({ running: 'primary' }), false).role).toBeUndefined();
  });
});

describe('events in words', () => {
  it.each([
    [
      'xstate.after.campaignDelay.masterNode.running.standby.awaitingCampaign',
      'campaign delay elapsed',
    ],
    ['xstate.after.retryDelay.masterNode.startFailed', 'retry delay elapsed'],
    ['xstate.done.actor.promote', 'promoted'],
    ['xstate.error.actor.promote', 'promotion failed'],
    ['xstate.done.actor.campaign', 'campaign decided'],
    ['xstate.done.actor.startNode', 'started'],
    ['xstate.done.actor.stepDown', 'stepped down'],
    ['lease.lost', 'lease lost'],
    ['oplog.fenced', 'fenced: another primary wrote'],
    ['oplog.progress', 'log progress'],
    ['node.switchover', 'switchover requested'],
    ['something.new', 'something.new'],
  ])('%s: %s', (type, words) => {
    expect(eventWords({ type })).toBe(words);
  });

  it('a campaign says whether it was won', () => {
    expect(eventWords({ type: 'xstate.done.actor.campaign', output: { won: true } })).toBe(
      'campaign won',
    );
    expect(eventWords({ type: 'xstate.done.actor.campaign', output: { won: false } })).toBe(
      'campaign lost',
    );
  });

  it('leader changes name the leader', () => {
    expect(eventWords({ type: 'leader.changed', leader: null })).toBe('leader key gone');
    expect(eventWords({ type: 'leader.changed', leader: { nodeId: 'n2', epoch: 4 } })).toBe(
      'leader is n2 (epoch 4)',
    );
  });
});

describe('replay: a recording that ends', () => {
  it('with its machine running (kill -9) marks the node gone; a clean stop does not', () => {
    const hub = new InspectHub({ mode: 'replay', title: 'replay' });
    const definition = JSON.stringify({ id: 'masterNode' });
    const actor = (node: string, at: number): InspectionRecord => ({
      ...base(node, at),
      type: '@xstate.actor',
      definition,
      snapshot: { status: 'active', value: 'starting' },
    });
    hub.add(actor('n1', 1));
    hub.add(actor('n2', 2));
    hub.add(snapshotRecord({ running: 'primary' }, 'active', {}, 'n1', 3));
    hub.add(snapshotRecord({ running: { standby: 'following' } }, 'active', {}, 'n2', 4));
    // n1 restarts (a new run of the same session), n2 stops cleanly.
    hub.add(actor('n1', 10));
    hub.add(snapshotRecord({ running: { standby: 'following' } }, 'active', {}, 'n1', 11));
    hub.add(snapshotRecord('stopped', 'done', {}, 'n2', 12));
    hub.add(snapshotRecord('stopped', 'done', {}, 'n1', 13));
    hub.attach(fakeResponse());
    const ends = hub.history
      .map((r, i) => ({ i, r }))
      .filter(({ r }) => r.type === '@understudy.recordingEnded');
    expect(ends.map(({ i, r }) => [i, r.node, r.createdAt])).toEqual([[3, 'n1', '3']]);
    hub.close();
  });
});

function base(node: string, at: number): Omit<InspectionRecord, 'type'> {
  return { sessionId: `${node}/x:0`, node, createdAt: String(at), _version: '0.7.2', id: null };
}

function snapshotRecord(
  value: unknown,
  status = 'active',
  context: unknown = {},
  node = 'n1',
  at = 1,
): InspectionRecord {
  return { ...base(node, at), type: '@xstate.snapshot', snapshot: { status, value, context } };
}

function fakeResponse(): Parameters<InspectHub['attach']>[0] {
  return {
    writeHead: () => undefined,
    write: () => true,
    end: () => undefined,
    once: () => undefined,
  } as unknown as Parameters<InspectHub['attach']>[0];
}
