/**
 * The role a master node's state stands for, from its state value alone: the one mapping used
 * by the node's `/status` (through its snapshot) and by `understudy inspect` (from recorded
 * snapshots), so the two never disagree.
 */
import type { NodeRole } from './masterNode.machine.ts';

/** The role of a `masterNode` state value (`{ running: { standby: 'following' } }`); `status` is the actor's. */
export function roleOfStateValue(value: unknown, status = 'active'): NodeRole {
  if (status === 'done') return 'stopped';
  const top = typeof value === 'string' ? value : topKey(value);
  if (top === 'starting' || top === 'startFailed') return 'starting';
  if (top === 'stopping') return 'stopping';
  if (top === 'stopped') return 'stopped';
  if (top !== 'running') return 'fenced';
  const inner = (value as Record<string, unknown>)['running'];
  const state = typeof inner === 'string' ? inner : topKey(inner);
  switch (state) {
    case 'standby':
      return 'standby';
    case 'syncing':
    case 'syncFailed':
      return 'syncing';
    case 'candidate':
      return 'candidate';
    case 'primary':
    case 'handingOver':
      return 'primary';
    default:
      return 'fenced';
  }
}

function topKey(value: unknown): string | undefined {
  return value !== null && typeof value === 'object' ? Object.keys(value)[0] : undefined;
}
