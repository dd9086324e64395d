/**
 * What the inspect page says about a record, in words a person uses: a table from event (and
 * the transition it caused) to words (`campaign delay elapsed`, `lease lost`, `promoted`), and
 * each master node snapshot's role and epoch, derived here from the one record so the page
 * never mixes a role from one source with a star or an epoch from another. The raw names stay
 * on the record (the page shows them as tooltips).
 */
import type { NodeRole } from '../../../machines/masterNode.machine.ts';
import { roleOfStateValue } from '../../../machines/nodeRole.ts';
import type { InspectionRecord, RecordedEvent } from '../../observe/inspectionRecord.ts';

/** A record as the page gets it: the record plus what it means. */
export interface StoryRecord extends InspectionRecord {
  /** `@xstate.event` (and the snapshot it led to): the event in words. */
  readonly words?: string;
  /** A master node snapshot: the role its state stands for. */
  readonly role?: NodeRole;
  /** A master node snapshot: its epoch when primary, else its leader's (0 when unknown). */
  readonly epoch?: number;
}

/** Delayed transitions (`xstate.after.NAME.<state id>`), by delay name. */
const AFTER_WORDS: Readonly<Record<string, string>> = {
  campaignDelay: 'campaign delay elapsed',
  retryDelay: 'retry delay elapsed',
};

/** Invoked actors finishing (`xstate.done.actor.ID`) and failing (`xstate.error.actor.ID`). */
const DONE_WORDS: Readonly<Record<string, readonly [done: string, error: string]>> = {
  startNode: ['started', 'start failed'],
  campaign: ['campaign decided', 'campaign failed'],
  promote: ['promoted', 'promotion failed'],
  fullSync: ['full sync done', 'full sync failed'],
  handOver: ['handed over', 'handover failed'],
  stepDown: ['stepped down', 'step-down failed'],
  shutdown: ['shut down', 'shutdown failed'],
  serve: ['stopped serving', 'serving failed'],
  followLog: ['log follower ended', 'log follower failed'],
  watchLease: ['lease watch ended', 'lease watch failed'],
  watchLeader: ['leader watch ended', 'leader watch failed'],
  verify: ['verifier ended', 'verifier failed'],
};

/** Events by type. */
const EVENT_WORDS: Readonly<Record<string, string | ((e: RecordedEvent) => string)>> = {
  'xstate.init': 'machine started',
  'xstate.stop': 'machine stopped',
  'leader.changed': (e) => {
    const leader = e['leader'] as { nodeId?: unknown; epoch?: unknown } | null | undefined;
    return leader === null || leader === undefined
      ? 'leader key gone'
      : `leader is ${String(leader.nodeId)} (epoch ${String(leader.epoch)})`;
  },
  'oplog.progress': 'log progress',
  'oplog.needsSync': 'needs a full sync',
  'oplog.fenced': 'fenced: another primary wrote',
  'verify.done': (e) =>
    e['needsFullSync'] === true
      ? 'verification: full sync needed'
      : e['healthy'] === false
        ? 'verification failed'
        : 'verification passed',
  'lease.lost': 'lease lost',
  'node.stop': 'stop requested',
  'node.switchover': (e) =>
    typeof e['target'] === 'string'
      ? `switchover to ${e['target']} requested`
      : 'switchover requested',
};

/** The event in words; the raw type when the table does not know it. */
export function eventWords(event: RecordedEvent | undefined): string {
  const type = event?.type ?? '?';
  const after = /^xstate\.after\.([^.]+)\./.exec(type);
  if (after !== null) return AFTER_WORDS[after[1] ?? ''] ?? `${after[1] ?? 'delay'} elapsed`;
  const done = /^xstate\.(done|error)\.actor\.(.+)$/.exec(type);
  if (done !== null) {
    const id = (done[2] ?? '').replace(/^.*\//, '').replace(/\.\d+$/, '');
    const words = DONE_WORDS[id];
    const failed = done[1] === 'error';
    const output = (event as RecordedEvent)['output'] as { won?: unknown } | undefined;
    if (id === 'campaign' && !failed && typeof output?.won === 'boolean') {
      return output.won ? 'campaign won' : 'campaign lost';
    }
    if (words !== undefined) return failed ? words[1] : words[0];
    return failed ? `${id} failed` : `${id} done`;
  }
  const known = EVENT_WORDS[type];
  if (known === undefined) return type;
  return typeof known === 'string' ? known : known(event as RecordedEvent);
}

/** The machine a root actor record defines (`masterNode`), from its definition. */
export function machineOf(record: InspectionRecord): string | undefined {
  if (record.definition === undefined) return undefined;
  try {
    const id = (JSON.parse(record.definition) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Tells records their story: `masterNode` tells whether `record`'s actor is a master node (the
 * caller tracks which sessions are). Adds words to events, and role and epoch to snapshots.
 */
export function tellStory(record: InspectionRecord, masterNode: boolean): StoryRecord {
  const words =
    record.type === '@xstate.event' || record.event !== undefined
      ? { words: eventWords(record.event) }
      : {};
  const snapshot = record.snapshot;
  if (!masterNode || snapshot === undefined || snapshot.value === undefined) {
    return { ...record, ...words };
  }
  const role = roleOfStateValue(snapshot.value, snapshot.status);
  const context = (snapshot.context ?? {}) as {
    epoch?: unknown;
    leader?: { epoch?: unknown } | null;
  };
  const epoch = Number(role === 'primary' ? context.epoch : context.leader?.epoch) || 0;
  return { ...record, ...words, role, epoch };
}
