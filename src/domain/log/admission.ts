/**
 * Which entries are the log's: only the elected primary's. An `EPOCH` entry counts when it is a
 * real election (`elected`: its epoch is a create revision of the leader key held by the node it
 * names), its epoch is above the current one, and the entry is stamped with that epoch; every
 * other entry counts when it is stamped with the current epoch (that of the last `EPOCH` that
 * counted). Anything else is foreign: an outsider's forgery, or a stale writer's, never folded.
 *
 * What this cannot tell: a forged entry stamped with the current epoch (only signed batches can,
 * see docs/design.md). Whether the entries that count are contiguous is the fold's check.
 */
import type { LoggedEvent } from '../model/types.ts';

/** An entry that is not the log's, and why. */
export interface ForeignEntry {
  readonly seq: number;
  readonly epoch: number;
  readonly op: LoggedEvent['event']['op'];
  readonly why: string;
}

/** An `EPOCH` entry's claim, to be checked against the coordinator. */
export interface ElectionClaim {
  readonly epoch: number;
  readonly nodeId: string;
}

/** Whether `claim` is a real election. */
export type ElectedCheck = (claim: ElectionClaim) => boolean;

/**
 * Splits `events` (in log order, all after `appliedSeq`) into those that count, starting from
 * current epoch `epoch`, and the foreign ones.
 */
export function admit(
  epoch: number,
  events: readonly LoggedEvent[],
  elected: ElectedCheck,
): { readonly admitted: LoggedEvent[]; readonly foreign: ForeignEntry[] } {
  const admitted: LoggedEvent[] = [];
  const foreign: ForeignEntry[] = [];
  let current = epoch;
  for (const logged of events) {
    const why = foreignWhy(current, logged, elected);
    if (why === undefined) {
      admitted.push(logged);
      if (logged.event.op === 'EPOCH') current = logged.event.epoch;
    } else foreign.push({ seq: logged.seq, epoch: logged.epoch, op: logged.event.op, why });
  }
  return { admitted, foreign };
}

function foreignWhy(
  current: number,
  logged: LoggedEvent,
  elected: ElectedCheck,
): string | undefined {
  const { event } = logged;
  if (event.op !== 'EPOCH') {
    return logged.epoch === current
      ? undefined
      : `stamped with epoch ${logged.epoch}, not the current epoch ${current}`;
  }
  if (logged.epoch !== event.epoch) {
    return `an EPOCH ${event.epoch} fence stamped with epoch ${logged.epoch}`;
  }
  if (event.epoch <= current) {
    return `an EPOCH ${event.epoch} fence not above the current epoch ${current}`;
  }
  if (!elected({ epoch: event.epoch, nodeId: event.nodeId })) {
    return `an EPOCH ${event.epoch} fence of ${event.nodeId}, who was not elected at that epoch`;
  }
  return undefined;
}

/**
 * The current epoch before the first entry a read sees: 0 when the read starts at the log's
 * beginning or at a fence, else (a stream trimmed below its term's fence) that entry's own.
 */
export function startingEpoch(first: LoggedEvent): number {
  return first.seq === 1 || first.event.op === 'EPOCH' ? 0 : first.epoch;
}

/** Verdicts on election claims, once each (the coordinator is asked only about new ones). */
export class ElectionVerdicts {
  readonly #verdicts = new Map<string, boolean>();

  has(claim: ElectionClaim): boolean {
    return this.#verdicts.has(verdictKey(claim));
  }

  set(claim: ElectionClaim, elected: boolean): void {
    this.#verdicts.set(verdictKey(claim), elected);
  }

  /** Whether a claim with a verdict is a real election (false without one). */
  readonly elected: ElectedCheck = (claim) => this.#verdicts.get(verdictKey(claim)) === true;
}

function verdictKey(claim: ElectionClaim): string {
  return `${claim.epoch}:${claim.nodeId}`;
}
