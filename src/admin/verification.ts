/**
 * Verification in the node: a standby's periodic rounds (sample shards, ask the primary,
 * repair in place or ask for a full sync), the primary's answer against its committed state,
 * the counters both keep, and a test-only corruption of a standby's state.
 */
import { produce } from 'immer';
import { bucketOf, keyHash, SHARD_COUNT } from '../domain/model/shard.ts';
import { getObject } from '../domain/model/state.ts';
import type { MetadataState, ObjectRecord } from '../domain/model/types.ts';
import { answerVerify, type VerifyResponse } from '../domain/verify/answer.ts';
import { applyCorrections } from '../domain/verify/repair.ts';
import { buildVerifyRequest, planRound, type VerifyRequest } from '../domain/verify/sampling.ts';
import { RepairError } from '../domain/verify/verifyErrors.ts';
import { jsonReply, parseRequest, type AdminClient } from './adminApi.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** Counters of verification and full sync, as `/status` shows them under `verification`. */
export interface VerificationStats {
  /** Rounds answered by the primary. */
  rounds: number;
  /** Rounds that got no answer (no primary, timeout, error). */
  failedRounds: number;
  keysChecked: number;
  /** Records found wrong (corrections plus reset shards). */
  mismatches: number;
  /** Rounds whose corrections were applied. */
  repairs: number;
  /** Full syncs completed. */
  fullSyncs: number;
  /** Rounds answered NEED_FULL_SYNC, or whose repair failed. */
  fullSyncRequests: number;
  lastStatus: VerifyResponse['status'] | 'FAILED' | null;
  /** Clock time of the last answered round; 0 before the first. */
  lastRoundAt: number;
  /** Clock time of the round that set `lastStatus` (answered or FAILED); 0 before the first. */
  lastStatusAt: number;
  lastFullSyncMs: number;
  lastFullSyncBytes: number;
  /** Verification requests this node answered as primary. */
  answered: number;
}

export function emptyVerificationStats(): VerificationStats {
  return {
    rounds: 0,
    failedRounds: 0,
    keysChecked: 0,
    mismatches: 0,
    repairs: 0,
    fullSyncs: 0,
    fullSyncRequests: 0,
    lastStatus: null,
    lastRoundAt: 0,
    lastStatusAt: 0,
    lastFullSyncMs: 0,
    lastFullSyncBytes: 0,
    answered: 0,
  };
}

export interface VerificationSettings {
  /** Fraction of the shards sampled per round (default 0.1). */
  readonly fraction: number;
  /** Most keys sent per shard (default 100). */
  readonly maxKeysPerShard: number;
}

/** What one standby round came to. */
export interface RoundOutcome {
  readonly status: VerifyResponse['status'];
  readonly keysChecked: number;
  readonly mismatches: number;
  /** The repaired state, installed by the caller; undefined when nothing changed. */
  readonly repaired: MetadataState | undefined;
  /**
   * True when the standby needs a full sync: NEED_FULL_SYNC (but for the gap alone while the
   * standby folds), or the repair failed.
   */
  readonly needsFullSync: boolean;
  readonly detail: string | undefined;
}

/**
 * One standby round `round`: samples the shards of `state` that `planRound` names, asks the
 * primary, and works out the repair against `current()` (the committed state when the answer
 * arrives: the follower may have folded more). A NEED_FULL_SYNC for the gap alone (the standby
 * was further behind than the primary's `maxGap` when it answered) asks for no full sync when
 * `current()` is past `state`: the standby is folding and catches up from the log (at a high
 * write rate a healthy standby is routinely 1000 entries behind by the time the answer comes).
 * Rejects only with the transport's errors.
 */
export async function runVerificationRound(
  admin: AdminClient,
  state: MetadataState,
  current: () => MetadataState,
  round: number,
  settings: VerificationSettings,
): Promise<RoundOutcome> {
  const shardIds = planRound(round, { fraction: settings.fraction });
  const perCycle = Math.ceil(SHARD_COUNT / Math.max(1, shardIds.length));
  const request = buildVerifyRequest(state, shardIds, {
    maxKeysPerShard: settings.maxKeysPerShard,
    sampleOffset: Math.floor(round / perCycle),
  });
  const response = await admin.json<VerifyResponse>('verify', request);
  switch (response.status) {
    case 'OK':
      return {
        status: 'OK',
        keysChecked: response.keysChecked,
        mismatches: 0,
        repaired: undefined,
        needsFullSync: false,
        detail: undefined,
      };
    case 'NEED_FULL_SYNC': {
      // Too far behind to judge is no fault of the state. A standby still folding (it applied
      // entries since it sampled) catches up from the log: a full sync would stop its fold for
      // the whole state's transfer (seconds at 100k+ objects), which is what made it lag.
      const folded = current().appliedSeq - state.appliedSeq;
      const catchingUp = response.reason === 'gap' && folded > 0;
      return {
        status: 'NEED_FULL_SYNC',
        keysChecked: 0,
        mismatches: 0,
        repaired: undefined,
        needsFullSync: !catchingUp,
        detail: catchingUp
          ? `${response.reason}: ${response.detail}; not synced: ${folded} entries folded since, catching up from the log`
          : `${response.reason}: ${response.detail}`,
      };
    }
    case 'MISMATCH': {
      const sessions = response.sessionCorrections?.length ?? 0;
      const mismatches = response.corrections.length + response.shardResets.length + sessions;
      const keys = response.corrections.slice(0, 10).map((c) => c.key);
      try {
        const repaired = applyCorrections(current(), response, state);
        return {
          status: 'MISMATCH',
          keysChecked: response.keysChecked,
          mismatches,
          repaired,
          needsFullSync: false,
          detail: `keys ${keys.join(', ')}; ${response.shardResets.length} shard resets; ${sessions} sessions`,
        };
      } catch (err) {
        if (!(err instanceof RepairError)) throw err;
        return {
          status: 'MISMATCH',
          keysChecked: response.keysChecked,
          mismatches,
          repaired: undefined,
          needsFullSync: true,
          detail: `repair failed: ${err.message}`,
        };
      }
    }
  }
}

export interface VerifyAnswererOptions {
  /** The primary's committed state (never the speculative one). */
  readonly committed: () => MetadataState;
  readonly maxGap: number;
  readonly maxMismatches: number;
  /** Called after each answer (metrics, logs). */
  readonly onAnswer?: (request: VerifyRequest, response: VerifyResponse) => void;
}

/** The primary's `verify` op: answers a standby's round against the committed state. */
export function verifyOp(options: VerifyAnswererOptions): (body: Uint8Array) => Uint8Array {
  return (body) => {
    const request = parseRequest<VerifyRequest>('verify', body);
    const response = answerVerify(options.committed(), request, {
      maxGap: options.maxGap,
      maxMismatches: options.maxMismatches,
    });
    options.onAnswer?.(request, response);
    return jsonReply(response);
  };
}

/** The corruptions a test can inject into a standby's state. */
export type CorruptionKind = 'replica' | 'size' | 'missing' | 'extra';

export const CORRUPTION_KINDS: readonly CorruptionKind[] = ['replica', 'size', 'missing', 'extra'];

/** A corruption that cannot be made (the key is absent, or present for `extra`). */
export class CorruptionError extends UnderstudyError {
  override readonly name = 'CorruptionError';
  readonly code = 'CORRUPTION';
  override readonly retryable = false;
  constructor(
    readonly key: string,
    readonly kind: CorruptionKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`cannot corrupt ${key} (${kind}): ${message}`, options);
  }
}

/**
 * TEST ONLY: `state` with one record corrupted, as a new frozen state. `replica` moves the
 * first replica's offset by one, `size` adds one to the size, `missing` drops the key, `extra`
 * adds the key (absent before) with size 1 and no replicas. Segments and counters are left as
 * they were, as a memory fault would leave them.
 */
export function corruptState(
  state: MetadataState,
  key: string,
  kind: CorruptionKind,
): MetadataState {
  const existing = getObject(state, key);
  if (kind === 'extra' ? existing !== undefined : existing === undefined)
    throw new CorruptionError(key, kind, kind === 'extra' ? 'the key exists' : 'no such key');
  const hash = keyHash(key);
  const shardId = hash % SHARD_COUNT;
  const b = bucketOf(hash);
  return produce(state, (draft) => {
    const bucket = (draft.shards[shardId] as ObjectRecord[][])[b] as ObjectRecord[];
    const at = bucket.findIndex((r) => r.key === key);
    const record = bucket[at];
    switch (kind) {
      case 'extra':
        bucket.push({ key, size: 1, replicas: [], lastSeq: Math.max(1, state.appliedSeq) });
        return;
      case 'missing':
        bucket.splice(at, 1);
        return;
      case 'size':
        if (record !== undefined) bucket[at] = { ...record, size: record.size + 1 };
        return;
      case 'replica': {
        if (record === undefined) return;
        const [first, ...rest] = record.replicas;
        if (first === undefined) {
          bucket[at] = { ...record, size: record.size + 1 };
          return;
        }
        bucket[at] = { ...record, replicas: [{ ...first, offset: first.offset + 1 }, ...rest] };
        return;
      }
    }
  });
}
