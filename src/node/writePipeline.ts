import type { DecideContext, Draft, Logged, LogState } from '../domain/decider.ts';
import type { RequestOrigin } from '../domain/model/types.ts';
import type { OpLogEntry } from '../domain/log/entry.ts';
import { NotPrimaryError } from '../ports/metadataService.ts';
import type { Clock, TimerHandle } from '../ports/clock.ts';
import type { OpLogWriter } from '../ports/opLog.ts';
import type { BatchItemOf, CommandService, NodeDomain } from './nodeDomain.ts';
import type { CommittedStore } from './state/committedStore.ts';
import { deferred, type Deferred } from './deferred.ts';
import type { ReadLeases } from './state/readLeases.ts';
import { LoggedClock } from './state/loggedClock.ts';
import { LEASE_DEADLINE_PASSED, type NodeLease } from './state/nodeLease.ts';

export interface WritePipelineOptions<S extends LogState, C, E, R> {
  readonly nodeId: string;
  readonly epoch: number;
  /** The domain: its decider, entries, sessions and answers. */
  readonly domain: Pick<NodeDomain<S, C, E, R>, 'decider' | 'log' | 'writes'>;
  readonly store: CommittedStore<S, E>;
  readonly writer: OpLogWriter;
  /** Synchronous: whether this node may still act on its lease (the node's {@link NodeLease}). */
  readonly lease: Pick<NodeLease, 'live'>;
  readonly clock: Clock;
  /** Whether a key is read-leased (decide does not remove or evict what a reader may read). */
  readonly leases: Pick<ReadLeases, 'isReadLeased'>;
  /** How often the primary checks for housekeeping (eviction) (ms); 0 disables the timer. */
  readonly evictionIntervalMs: number;
  /** Called once when the pipeline stops serving on its own (fence, lost append, deadline). */
  readonly onFault: (reason: string) => void;
  /** TEST ONLY (the broken variant of `NodeRuntimeDeps.brokenForTest`): do not wait to answer refusals. */
  readonly refusalsBeforeCommit?: boolean;
}

interface InFlight<S> {
  readonly lastSeq: number;
  /** The speculative state right after this append's last entry. */
  readonly state: S;
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
export class WritePipeline<S extends LogState, C, E, R> implements CommandService<S, C, R> {
  #spec: S;
  #nextSeq: number;
  readonly #inFlight: InFlight<S>[] = [];
  #closed: string | undefined;
  /** Set by drain(): new commands are refused, but what is in flight is still answered. */
  #draining: string | undefined;
  #evictionTimer: TimerHandle | undefined;
  readonly #ctx: DecideContext;
  /** Stamps `ts`, from the logged time committed when the pipeline starts (see LoggedClock). */
  readonly #loggedClock: LoggedClock;

  constructor(private readonly options: WritePipelineOptions<S, C, E, R>) {
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

  async execute(command: C, origin?: RequestOrigin): Promise<R> {
    const [item] = await this.executeBatch([command], origin === undefined ? undefined : [origin]);
    if (item === undefined) throw new Error('no result');
    if (!item.ok) throw item.error;
    return item.result;
  }

  async executeBatch(
    commands: readonly C[],
    origins?: readonly (RequestOrigin | undefined)[],
  ): Promise<BatchItemOf<R>[]> {
    this.#assertServing();
    const { decider, writes } = this.options.domain;
    // One pass: every command is decided against the draft of the next speculative state
    // (committed, in flight, and this batch's earlier commands), folded into it, and the
    // draft frozen once; each entry is encoded once, with its frame.
    const draft = decider.draft(this.#spec);
    const state = draft.state;
    const firstSeq = this.#nextSeq;
    const ts = this.#loggedClock.stamp();
    const entries: OpLogEntry[] = [];
    const items: Array<BatchItemOf<R> | { pending: R }> = [];
    try {
      for (const [i, command] of commands.entries()) {
        const origin = origins?.[i];
        if (origin !== undefined) {
          const bad = writes.checkOrigin(origin);
          if (bad !== undefined) {
            items.push({ ok: false, error: bad });
            continue;
          }
          const known = writes.requestStatus(state, origin, command);
          if (known.kind === 'applied') {
            items.push({ ok: true, result: known.answer });
            continue;
          }
          if (known.kind === 'refused') {
            items.push({ ok: false, error: known.error });
            continue;
          }
        }
        let decision = decider.decide(command, state, this.#ctx);
        if (!decision.ok) {
          // The write policy may log an event first (an eviction) and decide once more.
          const room = writes.makeRoom(command, decision.error, state, this.#ctx);
          if (room !== null) {
            entries.push(this.#speculate(draft, ts, room));
            decision = decider.decide(command, state, this.#ctx);
          }
        }
        if (!decision.ok) {
          items.push({ ok: false, error: decision.error });
          continue;
        }
        const entry = this.#speculate(draft, ts, decision.event, origin);
        entries.push(entry);
        items.push({ pending: writes.answer(decision.event, entry.seq) });
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

  /** Reads answer from the committed state, and only while the lease deadline is ahead. */
  read<T>(read: (state: S) => T): Promise<T> {
    try {
      this.#assertServing();
      return Promise.resolve(read(this.options.store.state));
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
  #speculate(draft: Draft<S, E>, ts: number, event: E, origin?: RequestOrigin): OpLogEntry {
    const entry = { seq: this.#nextSeq, epoch: this.options.epoch, ts, event };
    const logged: Logged<E> = origin === undefined ? entry : { ...entry, origin };
    draft.apply(logged);
    this.#nextSeq++;
    return this.options.domain.log.toEntry(logged);
  }

  async #append(entries: readonly OpLogEntry[]): Promise<void> {
    const lastSeq = entries[entries.length - 1]?.seq ?? 0;
    const flight: InFlight<S> = {
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

  /** Logs the domain's housekeeping event (the metadata's: an eviction), if one is due. */
  #evictIfFull(): void {
    if (!this.options.lease.live()) return;
    const event = this.options.domain.writes.housekeeping(this.#spec, this.#ctx);
    if (event === null) return;
    const draft = this.options.domain.decider.draft(this.#spec);
    const entry = this.#speculate(draft, this.#loggedClock.stamp(), event);
    this.#spec = draft.finish();
    this.#append([entry]).catch(() => undefined);
  }
}
