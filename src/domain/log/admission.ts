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
import type { Logged } from '../decider.ts';
import type { LoggedEvent, MetadataEvent } from '../model/types.ts';

/** An entry that is not the log's, and why. */
export interface ForeignEntry {
  readonly seq: number;
  readonly epoch: number;
  /** The entry's op (its event's name). */
  readonly op: string;
  readonly why: string;
}

/** An `EPOCH` entry's claim, to be checked against the coordinator. */
export interface ElectionClaim {
  readonly epoch: number;
  readonly nodeId: string;
}

/** Whether `claim` is a real election. */
export type ElectedCheck = (claim: ElectionClaim) => boolean;

/** What admission reads of a domain's events: which are fences (and their claim), and their op. */
export interface FenceReader<E> {
  /** The election claim of a fence; undefined for every other event. */
  fenceOf(event: E): ElectionClaim | undefined;
  /** The event's op, as its log entry names it. */
  opOf(event: E): string;
}

/** The metadata's fences: `EPOCH` events. */
export const METADATA_FENCES: FenceReader<MetadataEvent> = Object.freeze({
  fenceOf: (event: MetadataEvent): ElectionClaim | undefined =>
    event.op === 'EPOCH' ? { epoch: event.epoch, nodeId: event.nodeId } : undefined,
  opOf: (event: MetadataEvent): string => event.op,
});

/**
 * Splits `events` (in log order, all after `appliedSeq`) into those that count, starting from
 * current epoch `epoch`, and the foreign ones.
 */
export function admit<E = MetadataEvent>(
  epoch: number,
  events: readonly Logged<E>[],
  elected: ElectedCheck,
  fences: FenceReader<E> = METADATA_FENCES as unknown as FenceReader<E>,
): { readonly admitted: Logged<E>[]; readonly foreign: ForeignEntry[] } {
  const admitted: Logged<E>[] = [];
  const foreign: ForeignEntry[] = [];
  let current = epoch;
  for (const logged of events) {
    const fence = fences.fenceOf(logged.event);
    const why = foreignWhy(current, logged, fence, elected);
    if (why === undefined) {
      admitted.push(logged);
      if (fence !== undefined) current = fence.epoch;
    } else {
      foreign.push({ seq: logged.seq, epoch: logged.epoch, op: fences.opOf(logged.event), why });
    }
  }
  return { admitted, foreign };
}

function foreignWhy(
  current: number,
  logged: Logged<unknown>,
  event: ElectionClaim | undefined,
  elected: ElectedCheck,
): string | undefined {
  if (event === undefined) {
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
