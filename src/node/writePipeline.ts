import { metadataDecider, type DecideContext, type FoldDraft } from '../domain/decider.ts';
import { invalidArgument, objectNotFound } from '../domain/model/errors.ts';
import { checkOrigin, toEntry } from '../domain/log/eventCodec.ts';
import { decideEviction, type EvictionPolicy } from '../domain/decide/eviction.ts';
import { requestStatus } from '../domain/decide/sessions.ts';
import { getObject } from '../domain/model/state.ts';
import type {
  Command,
  LoggedEvent,
  MetadataEvent,
  MetadataState,
  ObjectRecord,
  RequestOrigin,
} from '../domain/model/types.ts';
import type { OpLogEntry } from '../domain/log/entry.ts';
import {
  NotPrimaryError,
  type ExecuteResult,
  type MetadataService,
} from '../ports/metadataService.ts';
import type { Clock, TimerHandle } from '../ports/clock.ts';
import type { OpLogWriter } from '../ports/opLog.ts';
import type { CommittedStore } from './state/committedStore.ts';
import { deferred, type Deferred } from './deferred.ts';
import type { ReadLeases } from './state/readLeases.ts';
import { LoggedClock } from './state/loggedClock.ts';
import { LEASE_DEADLINE_PASSED, type NodeLease } from './state/nodeLease.ts';

export interface WritePipelineOptions {
  readonly nodeId: string;
  readonly epoch: number;
  readonly store: CommittedStore;
  readonly writer: OpLogWriter;
  /** Synchronous: whether this node may still act on its lease (the node's {@link NodeLease}). */
  readonly lease: Pick<NodeLease, 'live'>;
  readonly clock: Clock;
  readonly leases: ReadLeases;
  readonly eviction: EvictionPolicy;
  /** How often the primary checks the high-water mark (ms); 0 disables the timer. */
  readonly evictionIntervalMs: number;
  /** Called once when the pipeline stops serving on its own (fence, lost append, deadline). */
  readonly onFault: (reason: string) => void;
  /** TEST ONLY (the broken variant of `NodeRuntimeDeps.brokenForTest`): do not wait to answer refusals. */
  readonly refusalsBeforeCommit?: boolean;
}

type BatchItem = { ok: true; result: ExecuteResult } | { ok: false; error: Error };

interface InFlight {
  readonly lastSeq: number;
  /** The speculative state right after this append's last entry. */
  readonly state: MetadataState;
  streamSeq: number | undefined;
  readonly committed: Deferred<void>;
  /** When it was handed to the writer (monotonic). */
  readonly sentAt: number;
}

/**
 * The primary's write path. It decides each command against its speculative state (committed
 * plus in flight), appends the events fenced and group-committed, folds them into the
 * committed state when the OpLog acknowledges them, in seq order, and only then answers.
 *
 * Every answer is a promise about committed state: a success once its entry is acknowledged;
 * a refusal, or the original result of a retried request (found in the session table), only
 * once every append before it in the pipeline is acknowledged too, since the state it was
 * judged against includes them. The lease deadline is checked synchronously before taking a
 * command and before every answer. One failed append stops the pipeline: everything in flight
 * and waiting (refusals included) is answered with a retryable `NOT_PRIMARY`, and nothing is
 * rolled back because the committed state only ever holds acknowledged entries.
 */
export class WritePipeline implements MetadataService {
  #spec: MetadataState;
  #nextSeq: number;
  readonly #inFlight: InFlight[] = [];
  #closed: string | undefined;
  /** Set by drain(): new commands are refused, but what is in flight is still answered. */
  #draining: string | undefined;
  #evictionTimer: TimerHandle | undefined;
  readonly #ctx: DecideContext;
  /** Stamps `ts`, from the logged time committed when the pipeline starts (see LoggedClock). */
  readonly #loggedClock: LoggedClock;

  constructor(private readonly options: WritePipelineOptions) {
    this.#spec = options.store.state;
    this.#loggedClock = new LoggedClock(options.clock, options.store.state.logTime);
    this.#nextSeq = options.store.appliedSeq + 1;
    this.#ctx = { isReadLeased: options.leases.isReadLeased };
    this.#armEviction();
  }

  /** Entries appended and not yet acknowledged. */
  get inFlightCount(): number {
    return this.#inFlight.length;
  }

  /** When the oldest append not yet acknowledged was handed to the writer (monotonic), if any. */
  get oldestInFlightSentAt(): number | undefined {
    return this.#inFlight[0]?.sentAt;
  }

  async execute(command: Command, origin?: RequestOrigin): Promise<ExecuteResult> {
    const [item] = await this.executeBatch([command], origin === undefined ? undefined : [origin]);
    if (item === undefined) throw new Error('no result');
    if (!item.ok) throw item.error;
    return item.result;
  }

  async executeBatch(
    commands: readonly Command[],
    origins?: readonly (RequestOrigin | undefined)[],
  ): Promise<BatchItem[]> {
    this.#assertServing();
    // One pass: every command is decided against the draft of the next speculative state
    // (committed, in flight, and this batch's earlier commands), folded into it, and the
    // draft frozen once; each entry is encoded once, with its frame.
    const draft = metadataDecider.draft(this.#spec);
    const state = draft.state;
    const firstSeq = this.#nextSeq;
    const ts = this.#loggedClock.stamp();
    const entries: OpLogEntry[] = [];
    const items: Array<BatchItem | { pending: ExecuteResult }> = [];
    try {
      for (const [i, command] of commands.entries()) {
        const origin = origins?.[i];
        if (origin !== undefined) {
          const bad = checkOrigin(origin);
          if (bad !== undefined) {
            items.push({ ok: false, error: invalidArgument(bad.field, bad.message) });
            continue;
          }
          const known = requestStatus(state, origin, command);
          if (known.kind === 'applied') {
            const { seq, replicas } = known.result;
            items.push({ ok: true, result: replicas === undefined ? { seq } : { seq, replicas } });
            continue;
          }
          if (known.kind === 'refused') {
            items.push({ ok: false, error: known.error });
            continue;
          }
        }
        let decision = metadataDecider.decide(command, state, this.#ctx);
        if (!decision.ok && decision.error.code === 'NO_SPACE' && command.type === 'putStart') {
          const eviction = decideEviction(state, this.options.eviction, this.#ctx);
          if (eviction !== null) {
            entries.push(this.#speculate(draft, ts, eviction));
            decision = metadataDecider.decide(command, state, this.#ctx);
          }
        }
        if (!decision.ok) {
          items.push({ ok: false, error: decision.error });
          continue;
        }
        const entry = this.#speculate(draft, ts, decision.event, origin);
        entries.push(entry);
        const event = decision.event;
        items.push({
          pending:
            event.op === 'PUT_START'
              ? { seq: entry.seq, replicas: event.replicas }
              : { seq: entry.seq },
        });
      }
    } catch (err) {
      // A bug (the fold refused what decide chose): nothing of the batch is kept or appended.
      this.#nextSeq = firstSeq;
      throw err;
    }
    // Every answer of the batch (refusals and replayed results too) was judged against state
    // that includes whatever is in flight: answer once all of it is committed.
    if (entries.length > 0) {
      this.#spec = draft.finish();
      await this.#append(entries);
    } else if (this.options.refusalsBeforeCommit !== true) await this.#committed();
    this.#assertServing(false);
    return items.map((item) => ('pending' in item ? { ok: true, result: item.pending } : item));
  }

  /** Resolves once every append in flight now is committed; rejects as they do. */
  #committed(): Promise<void> {
    const last = this.#inFlight[this.#inFlight.length - 1];
    return last === undefined ? Promise.resolve() : last.committed.promise;
  }

  get(key: string): Promise<ObjectRecord> {
    return this.#read(() => {
      const record = getObject(this.options.store.state, key);
      if (record === undefined) throw objectNotFound(key);
      this.options.leases.grant(key);
      return record;
    });
  }

  exists(key: string): Promise<boolean> {
    return this.#read(() => getObject(this.options.store.state, key) !== undefined);
  }

  /** Reads answer from the committed state, and only while the lease deadline is ahead. */
  #read<T>(read: () => T): Promise<T> {
    try {
      this.#assertServing();
      return Promise.resolve(read());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Stops taking commands and waits until every append in flight has settled. */
  async drain(): Promise<void> {
    this.#draining ??= 'handing over';
    this.#evictionTimer?.clear();
    await Promise.allSettled(this.#inFlight.map((f) => f.committed.promise));
  }

  /** Stops serving now: whatever is in flight is answered with `NOT_PRIMARY`. */
  close(reason: string): void {
    this.#closed ??= reason;
    this.#evictionTimer?.clear();
    this.#failInFlight(reason);
  }

  /** Throws unless serving; `fresh` (a new command or read) is also refused while draining. */
  #assertServing(fresh = true): void {
    if (this.#closed !== undefined) throw new NotPrimaryError(this.#closed);
    if (fresh && this.#draining !== undefined) throw new NotPrimaryError(this.#draining);
    if (!this.options.lease.live()) {
      this.#fault(LEASE_DEADLINE_PASSED);
      throw new NotPrimaryError(LEASE_DEADLINE_PASSED);
    }
  }

  /** Folds `event` into `draft` as the next entry and returns that entry, encoded. */
  #speculate(
    draft: FoldDraft,
    ts: number,
    event: MetadataEvent,
    origin?: RequestOrigin,
  ): OpLogEntry {
    const entry = { seq: this.#nextSeq, epoch: this.options.epoch, ts, event };
    const logged: LoggedEvent = origin === undefined ? entry : { ...entry, origin };
    draft.apply(logged);
    this.#nextSeq++;
    return toEntry(logged);
  }

  async #append(entries: readonly OpLogEntry[]): Promise<void> {
    const lastSeq = entries[entries.length - 1]?.seq ?? 0;
    const flight: InFlight = {
      lastSeq,
      state: this.#spec,
      streamSeq: undefined,
      committed: deferred<void>(),
      sentAt: this.options.clock.monotonicNow(),
    };
    this.#inFlight.push(flight);
    this.options.writer.append(entries).then(
      (ack) => {
        flight.streamSeq = ack.streamSeq;
        this.#commitReady();
      },
      (err: unknown) => {
        this.#fault(`append of ${entries[0]?.seq ?? 0}..${lastSeq} failed: ${String(err)}`, err);
      },
    );
    await flight.committed.promise;
  }

  /** Folds acknowledged appends into the committed state strictly in seq order. */
  #commitReady(): void {
    while (this.#inFlight[0]?.streamSeq !== undefined) {
      const head = this.#inFlight.shift()!;
      this.options.store.commit(head.state, head.streamSeq!);
      head.committed.resolve();
    }
  }

  #fault(reason: string, cause?: unknown): void {
    if (this.#closed === undefined) {
      this.#closed = reason;
      this.#evictionTimer?.clear();
      this.options.onFault(reason);
    }
    this.#failInFlight(reason, cause);
  }

  #failInFlight(reason: string, cause?: unknown): void {
    const failed = this.#inFlight.splice(0);
    for (const flight of failed) {
      flight.committed.reject(
        new NotPrimaryError(reason, cause === undefined ? undefined : { cause }),
      );
    }
    this.#spec = this.options.store.state;
  }

  #armEviction(): void {
    if (this.options.evictionIntervalMs <= 0) return;
    this.#evictionTimer = this.options.clock.setTimeout(() => {
      if (this.#closed !== undefined) return;
      this.#evictIfFull();
      this.#armEviction();
    }, this.options.evictionIntervalMs);
  }

  #evictIfFull(): void {
    if (!this.options.lease.live()) return;
    const eviction = decideEviction(this.#spec, this.options.eviction, this.#ctx);
    if (eviction === null) return;
    const draft = metadataDecider.draft(this.#spec);
    const entry = this.#speculate(draft, this.#loggedClock.stamp(), eviction);
    this.#spec = draft.finish();
    this.#append([entry]).catch(() => undefined);
  }
}
