/**
 * Where `replay` and `export` start on a cluster whose stream was trimmed below its checkpoints:
 * the checkpoint to fold from (its state at seq S, then the stream from S+1), chosen from what
 * the cluster's checkpoint store lists and where the stream begins. Pure: the log sources list
 * and load the checkpoints.
 */
import type { CheckpointInfo } from '../../ports/checkpointStore.ts';

/** What a read needs a base for. */
export type BaseRequest =
  /** The state at `atSeq` (undefined: at the end of the log). */
  | {
      readonly mode: 'state';
      readonly atSeq: number | undefined;
      /** A checkpoint named by its seq or name (`--checkpoint`); else the newest that fits. */
      readonly named?: string | undefined;
    }
  /** Entries from `fromSeq` on (history of a key, an export). */
  | {
      readonly mode: 'range';
      readonly fromSeq: number;
      /** For notes: "history of \"user/1\"", "the export". */
      readonly what: string;
      readonly named?: string | undefined;
    };

/** Where the stream begins and ends, as entry seqs (undefined: no readable entry). */
export interface StreamSpan {
  readonly firstEntrySeq: number | undefined;
  readonly lastEntrySeq: number | undefined;
}

/** The start chosen for a read. */
export type BaseChoice =
  | {
      readonly kind: 'start';
      /** Fold from this checkpoint's state; undefined: from seq 1 (or from `readFrom`). */
      readonly checkpoint: CheckpointInfo | undefined;
      /** The first entry seq to read from the stream. */
      readonly readFrom: number;
      /** Said to the operator (where the history begins when earlier entries were trimmed). */
      readonly note: string | undefined;
    }
  /** The log cannot give what was asked for: why, plainly. */
  | { readonly kind: 'unavailable'; readonly reason: string };

/** Whether the stream holds every entry after checkpoint `c` (it may hold more before). */
function continues(c: CheckpointInfo, span: StreamSpan): boolean {
  if (span.firstEntrySeq === undefined) return true; // nothing left but what the checkpoint holds
  return span.firstEntrySeq <= c.appliedSeq + 1;
}

function listText(listed: readonly CheckpointInfo[]): string {
  if (listed.length === 0) return 'there are no checkpoints';
  return `the checkpoints are at seqs ${[...listed]
    .map((c) => c.appliedSeq)
    .sort((a, b) => a - b)
    .join(', ')}`;
}

function findNamed(
  listed: readonly CheckpointInfo[],
  named: string,
): CheckpointInfo | (BaseChoice & { kind: 'unavailable' }) {
  const bySeq = /^\d+$/.test(named) ? Number(named) : undefined;
  const found = listed.find((c) => c.name === named || c.appliedSeq === bySeq);
  return found ?? { kind: 'unavailable', reason: `no checkpoint ${named}: ${listText(listed)}` };
}

/**
 * Chooses where a read starts (see {@link BaseRequest}): for a state, the newest checkpoint at
 * or below the seq whose entries after it the stream still holds, or seq 1 when the stream is
 * whole and no checkpoint fits; for a range from F, the newest such checkpoint below F, or from
 * F itself when the stream holds it, or else the oldest checkpoint the stream continues (with a
 * note that earlier entries were trimmed).
 */
export function chooseBase(
  listed: readonly CheckpointInfo[],
  span: StreamSpan,
  request: BaseRequest,
): BaseChoice {
  const trimmedNote = (from: number, checkpoint: CheckpointInfo | undefined): string =>
    `${request.mode === 'range' ? request.what : 'the log'} begins at seq ${from}${checkpoint !== undefined ? ` (checkpoint ${checkpoint.appliedSeq})` : ''}; earlier entries were trimmed`;
  const start = (checkpoint: CheckpointInfo | undefined, note?: string): BaseChoice => ({
    kind: 'start',
    checkpoint,
    readFrom: checkpoint === undefined ? 1 : checkpoint.appliedSeq + 1,
    note,
  });
  const wholeStream =
    span.firstEntrySeq === undefined ? listed.length === 0 : span.firstEntrySeq <= 1;
  const upTo =
    request.mode === 'state' ? (request.atSeq ?? Number.POSITIVE_INFINITY) : request.fromSeq - 1;

  if (request.named !== undefined) {
    const found = findNamed(listed, request.named);
    if ('kind' in found) return found;
    if (!continues(found, span)) {
      return {
        kind: 'unavailable',
        reason: `checkpoint ${found.name} is at seq ${found.appliedSeq} but the stream begins at seq ${span.firstEntrySeq}: entries between them were trimmed`,
      };
    }
    if (request.mode === 'state' && found.appliedSeq > upTo) {
      return {
        kind: 'unavailable',
        reason: `checkpoint ${found.name} is at seq ${found.appliedSeq}, past --at ${upTo}`,
      };
    }
    if (request.mode === 'range' && found.appliedSeq >= request.fromSeq) {
      return start(found, trimmedNote(found.appliedSeq + 1, found));
    }
    return start(found);
  }

  const usable = listed.filter((c) => continues(c, span));
  const newest = usable
    .filter((c) => c.appliedSeq <= upTo)
    .reduce<CheckpointInfo | undefined>(
      (best, c) => (best === undefined || c.appliedSeq > best.appliedSeq ? c : best),
      undefined,
    );
  if (newest !== undefined) return start(newest);
  if (request.mode === 'state') {
    if (wholeStream) return start(undefined);
    const oldest = usable.reduce<CheckpointInfo | undefined>(
      (best, c) => (best === undefined || c.appliedSeq < best.appliedSeq ? c : best),
      undefined,
    );
    return {
      kind: 'unavailable',
      reason: `the state at seq ${upTo} is not available: the stream begins at seq ${span.firstEntrySeq ?? '?'}${oldest !== undefined ? ` and the oldest checkpoint is at seq ${oldest.appliedSeq}` : ' and there is no checkpoint'}; earlier entries were trimmed`,
    };
  }
  // A range from F with no checkpoint below F.
  if (span.firstEntrySeq === undefined || span.firstEntrySeq <= request.fromSeq) {
    return { kind: 'start', checkpoint: undefined, readFrom: request.fromSeq, note: undefined };
  }
  const oldest = usable.reduce<CheckpointInfo | undefined>(
    (best, c) => (best === undefined || c.appliedSeq < best.appliedSeq ? c : best),
    undefined,
  );
  if (oldest !== undefined) return start(oldest, trimmedNote(oldest.appliedSeq + 1, oldest));
  return {
    kind: 'start',
    checkpoint: undefined,
    readFrom: span.firstEntrySeq,
    note: trimmedNote(span.firstEntrySeq, undefined),
  };
}
