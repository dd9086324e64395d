/**
 * What a node needs of the domain it runs: the decider, the log envelope, the write policy, the
 * API binding, and (optionally) what verification, full sync and checkpoints need. The node's
 * runtime reaches the state it serves only through this interface; the metadata's is
 * `metadataNodeDomain` (metadataDomain.ts), and the simulation also runs a key-value register
 * (test/fixtures/kvRegister.ts) through the same node code.
 */
import type { DecideContext, Decider, Logged, LogState } from '../domain/decider.ts';
import type { FenceReader } from '../domain/log/admission.ts';
import type { OpLogEntry } from '../domain/log/entry.ts';
import type { RequestOrigin } from '../domain/model/types.ts';
import type { UnderstudyError } from '../domain/model/understudyError.ts';
import type { AdminClient } from '../admin/adminApi.ts';
import type { VerificationSettings } from '../admin/verification.ts';
import type { ApiRequestHandler } from '../ports/apiTransport.ts';
import type { Clock } from '../ports/clock.ts';

/** How the domain's events travel in the log: entries, and the fence a new primary appends. */
export interface LogEnvelope<E> extends FenceReader<E> {
  /** The op of fence entries: an entry of another op is not decoded to look for a claim. */
  readonly fenceOp: string;
  /** The fence event the primary of `epoch` appends first. */
  fence(epoch: number, nodeId: string): E;
  /** The framed entry of a logged event. */
  toEntry(logged: Logged<E>): OpLogEntry;
  /** The logged event of an entry; throws `CodecError` when it does not decode or check. */
  fromEntry(entry: OpLogEntry): Logged<E>;
}

/** What a session table says of a request (see domain/decide/sessions.ts). */
export type RequestStatusOf<R> =
  /** Not seen: decide it. */
  | { readonly kind: 'new' }
  /** Applied before: answer `answer` again. */
  | { readonly kind: 'applied'; readonly answer: R }
  /** Not to be applied (expired, or the number reused): refuse with `error`. */
  | { readonly kind: 'refused'; readonly error: UnderstudyError };

/** How a primary turns commands into answers, beyond deciding them. */
export interface WritePolicy<S, C, E, R> {
  /** Why `origin` is malformed (a refusal naming the field), or undefined. */
  checkOrigin(origin: RequestOrigin): UnderstudyError | undefined;
  /** What the session table of `state` says of request `origin` for `command`. */
  requestStatus(state: S, origin: RequestOrigin, command: C): RequestStatusOf<R>;
  /** The client's answer for the event a command logged at `seq`. */
  answer(event: E, seq: number): R;
  /**
   * An event to log before deciding `command` once more, after it was refused with `error`
   * (the metadata's: an eviction when a putStart finds no space); null for none.
   */
  makeRoom(command: C, error: UnderstudyError, state: S, ctx: DecideContext): E | null;
  /** An event the primary logs on its own when due (the metadata's: eviction), or null. */
  housekeeping(state: S, ctx: DecideContext): E | null;
}

/** One answer of a batch: the command's or why it was refused. */
export type BatchItemOf<R> = { ok: true; result: R } | { ok: false; error: Error };

/** What the primary's write pipeline offers the API binding. */
export interface CommandService<S, C, R> {
  /** Decides `command`; resolves once it can be answered (see WritePipeline). */
  execute(command: C, origin?: RequestOrigin): Promise<R>;
  /** Decides `commands` in order; one answer each, once all can be answered. */
  executeBatch(
    commands: readonly C[],
    origins?: readonly (RequestOrigin | undefined)[],
  ): Promise<BatchItemOf<R>[]>;
  /** `read` of the committed state, only while this node may serve (lease deadline ahead). */
  read<T>(read: (state: S) => T): Promise<T>;
}

/** How the client API reaches a primary's service. */
export interface ServiceBinding<S, C, R> {
  /** The API request handler over `service`; `grant` read-leases a key a client read. */
  handler(service: CommandService<S, C, R>, grant: (key: string) => void): ApiRequestHandler;
  /** The ops the handler answers (request metrics are labelled by them). */
  readonly ops: readonly string[];
  /** Whether `key` names something in `state` (read-leased for one TTL after a promotion). */
  holds(state: S, key: string): boolean;
}

/** The outcome of one verification round (admin/verification.ts). */
export interface RoundOutcomeOf<S> {
  readonly status: 'OK' | 'MISMATCH' | 'NEED_FULL_SYNC';
  readonly keysChecked: number;
  readonly mismatches: number;
  readonly repaired: S | undefined;
  readonly needsFullSync: boolean;
  readonly detail: string | undefined;
}

/**
 * What verification, full sync and checkpoints need of a domain. A domain without it runs
 * without them: a standby does not verify, a full sync re-folds the log, no checkpoint is written.
 */
export interface Replication<S> {
  /** The admin ops a primary answers for standbys: verification rounds and full-sync chunks. */
  adminOps(options: {
    readonly committed: () => { readonly state: S; readonly lastStreamSeq: number };
    readonly clock: Clock;
    readonly maxPartBytes?: number;
    readonly maxGap: number;
    readonly maxMismatches: number;
    readonly onAnswer: (forSeq: number, status: string) => void;
  }): { readonly ops: Record<string, (body: Uint8Array) => Uint8Array>; clear(): void };
  /** One standby round `round` of `state` against the primary; a repair is of `current()`. */
  verifyRound(
    client: AdminClient,
    state: S,
    current: () => S,
    round: number,
    settings: VerificationSettings,
  ): Promise<RoundOutcomeOf<S>>;
  /** A copy of the primary's committed state. */
  fullSync(
    client: AdminClient,
    signal?: AbortSignal,
  ): Promise<{ state: S; lastStreamSeq: number; chunks: number; bytes: number }>;
  /** The checkpoint of `state` as pieces to store; `onDigest` gets its digest at the end. */
  checkpointFrames(state: S, onDigest: (stateDigest: number) => void): Iterable<Uint8Array>;
  /** Rebuilds the state a checkpoint's pieces hold, checking them against `claim`. */
  readCheckpoint(
    pieces: AsyncIterable<Uint8Array>,
    claim: { readonly appliedSeq: number; readonly stateDigest: number },
  ): Promise<S>;
  /**
   * Checks what {@link readCheckpoint} checks without building the state (a writer's
   * read-back of what it just wrote: no second copy of its state on its heap).
   */
  checkCheckpoint(
    pieces: AsyncIterable<Uint8Array>,
    claim: { readonly appliedSeq: number; readonly stateDigest: number },
  ): Promise<void>;
  /** How many records `state` holds (for logs and checkpoint listings). */
  counts(state: S): { readonly objects: number; readonly sessions: number };
}

/** A domain a node runs (state `S`, commands `C`, events `E`, answers `R`). */
export interface NodeDomain<S extends LogState, C, E, R> {
  readonly decider: Decider<S, C, E>;
  readonly log: LogEnvelope<E>;
  readonly writes: WritePolicy<S, C, E, R>;
  readonly service: ServiceBinding<S, C, R>;
  readonly replication?: Replication<S>;
}

/**
 * A node domain as the node's parts hold it: only `LogState` is read of a state; commands,
 * events and answers pass through opaque, from one of the domain's own functions to another.
 */
export type AnyNodeDomain = NodeDomain<LogState, unknown, unknown, unknown>;
