// Primaries move back to the processes their groups prefer by planned switchover, never by
// killing: a primary that sees its group's preferred node live and caught up hands over to it.
// This is what spreads the groups again after a failed process returns (its groups failed over
// to the others) and after a start where one process came up first and won every group.
//
// The preference is taken over every node this process has seen, not only the live ones: the
// placement balances load, so it shifts when a node leaves, and judged over the live nodes the
// death of one process moved groups it never led (a CI failure of groups.e2e: a healthy group
// handed over from one survivor to the other, 746 ms without an answer). A group whose
// preferred node is down stays where it is until that node returns.
import type { Logger } from 'pino';
import { preferenceOrder } from '../domain/model/groupPreference.ts';
import type { Elector } from '../ports/elector.ts';
import { SwitchoverError, type NodeRuntime } from '../node/nodeRuntime.ts';

export interface RebalanceOptions {
  readonly group: number;
  readonly groups: number;
  readonly nodeId: string;
  readonly runtime: Pick<NodeRuntime, 'role' | 'serving' | 'switchover'>;
  /** The group member's elector: its member list says who is live, in which role. */
  readonly elector: Pick<Elector, 'members'>;
  readonly log: Logger;
  /** How often a primary looks (ms; default 1000). */
  readonly intervalMs?: number;
  /** How long it waits after a refused or failed switchover before trying again (ms; 5000). */
  readonly backoffMs?: number;
}

/**
 * Looks every `intervalMs` at the live members (remembering every node seen) and, while this
 * group member is the serving primary and the group prefers another node (among every node
 * seen) that is a live standby, switches over to it (the switchover refuses a target that has
 * not caught up: tried again after `backoffMs`). Returns the function that stops looking.
 */
export function keepPreferredPrimary(options: RebalanceOptions): () => void {
  const { group, groups, nodeId, runtime, elector, log } = options;
  const seen = new Set([nodeId]);
  let busy = false;
  let notBefore = 0;
  const look = async (): Promise<void> => {
    const members = await elector.members();
    for (const m of members) seen.add(m.nodeId);
    if (runtime.role !== 'primary' || !runtime.serving || Date.now() < notBefore) return;
    const preferred = preferenceOrder(group, groups, seen)[0];
    if (preferred === undefined || preferred === nodeId) return;
    const target = members.find((m) => m.nodeId === preferred);
    if (target?.role !== 'standby') return;
    log.info(
      { event: 'groupRebalance', group, to: preferred },
      `group ${group} prefers ${preferred}: switching over to it`,
    );
    try {
      await runtime.switchover(preferred);
    } catch (err) {
      notBefore = Date.now() + (options.backoffMs ?? 5000);
      log.info(
        {
          event: 'groupRebalanceDeferred',
          group,
          to: preferred,
          reason: err instanceof SwitchoverError ? err.reason : String(err),
        },
        `group ${group} stays here for now: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    look()
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, options.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
