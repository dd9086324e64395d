import {
  combineDigest,
  combineSessionChecksums,
  sessionChecksum,
  shardDigest,
  sortedSessions,
} from '../domain/log/checksum.ts';
import { SHARD_COUNT } from '../domain/model/shard.ts';
import { allSegments, allSessions } from '../domain/model/state.ts';
import type { MetadataState } from '../domain/model/types.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** The whole-state digest of one frozen state, and its shard digests (in shard order). */
export interface StateDigests {
  readonly digest: number;
  readonly shards: readonly number[];
}

/** Too many digest requests are waiting already: try again later. */
export class DigestBusyError extends UnderstudyError {
  override readonly name = 'DigestBusyError';
  readonly code = 'DIGEST_BUSY';
  override readonly retryable = true;
  constructor(readonly waiting: number) {
    super(`${waiting} digest requests are already waiting`);
  }
}

export interface StatusDigestOptions {
  /** The longest the computation holds the event loop before it yields (ms; default 5). */
  readonly sliceMs?: number;
  /** Digests of distinct states allowed to be queued at once; more are refused (default 8). */
  readonly maxWaiting?: number;
}

/**
 * Digests for `/status?digest` that never hold the node's event loop for long: a state's digest
 * is computed shard by shard, yielding to the loop every `sliceMs`, so keep-alives, lease
 * deadlines and requests go on meanwhile (at 200k objects a whole digest takes 0.5-0.9 s of
 * CPU). Rate-limited: one computation at a time, in request order; a state's digests are kept
 * while the state is, so every request for it shares one computation; at most `maxWaiting`
 * computations are queued, a request that would need another is refused with
 * {@link DigestBusyError}.
 */
export class StatusDigest {
  readonly #sliceMs: number;
  readonly #maxWaiting: number;
  readonly #computed = new WeakMap<MetadataState, Promise<StateDigests>>();
  #queue: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  constructor(options: StatusDigestOptions = {}) {
    this.#sliceMs = options.sliceMs ?? 5;
    this.#maxWaiting = options.maxWaiting ?? 8;
  }

  /** The digests of `state` (equal to `stateDigest` and `shardDigest` of it). */
  async of(state: MetadataState): Promise<StateDigests> {
    const known = this.#computed.get(state);
    if (known !== undefined) return known;
    if (this.#waiting >= this.#maxWaiting) throw new DigestBusyError(this.#waiting);
    this.#waiting++;
    const computing = this.#queue.then(() => this.#compute(state));
    this.#queue = computing.catch(() => undefined);
    this.#computed.set(state, computing);
    try {
      return await computing;
    } finally {
      this.#waiting--;
    }
  }

  async #compute(state: MetadataState): Promise<StateDigests> {
    let sliceStart = performance.now();
    const yieldNow = async (): Promise<void> => {
      if (performance.now() - sliceStart < this.#sliceMs) return;
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    };
    const shards: number[] = [];
    for (let s = 0; s < SHARD_COUNT; s++) {
      shards.push(shardDigest(state, s));
      await yieldNow();
    }
    const checksums: number[] = [];
    for (const session of sortedSessions(allSessions(state))) {
      checksums.push(sessionChecksum(session));
      await yieldNow();
    }
    return {
      digest: combineDigest(shards, allSegments(state), combineSessionChecksums(checksums)),
      shards,
    };
  }
}
