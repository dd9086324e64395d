/**
 * The client of a cluster of several groups: one {@link Client} per group (each its own
 * transport to `<cluster>-g<g>`, retries, term subjects, coalescer and session), and a router
 * over them. A key's call goes to its key's group alone; a batch is split by group, the parts
 * sent at once, and the results put back in the caller's order; a segment mount or unmount goes
 * to every group, each mounting its own slice of the segment (segmentSlices.ts).
 *
 * Sessions: every group keeps its own session of this client (the same id, its own request
 * numbers and its own replicated session table), so exactly-once and linearizability hold per
 * key exactly as with one group: a key only ever meets one group.
 */
import { MAX_BATCH_ITEMS, type Ack, type Placement, type PutStartItem } from '../api/schema.ts';
import { ApiError, type ApiErrorCode } from '../api/wire.ts';
import { assertGroupCount, groupOfKey } from '../domain/model/groups.ts';
import { segmentSlice } from '../domain/model/segmentSlices.ts';
import type { ObjectRecord } from '../domain/model/types.ts';
import { groupCluster } from '../api/subjects.ts';
import type { ApiClientTransport } from '../ports/apiTransport.ts';
import type { Clock } from '../ports/clock.ts';
import { Client, type BatchResult, type ClientOptions, type UnderstudyClient } from './client.ts';
import type { FailoverEvent } from './retryingCaller.ts';

/** What a mount or unmount fanned out to every group resolves with. */
export interface GroupsAck extends Ack {
  /** Each group's answer, by group: its `seq`, or `null` where it was already done. */
  readonly groups: readonly (Ack | null)[];
}

/**
 * A mount or unmount that some groups applied and others did not. The segment is then mounted
 * (unmounted) in `appliedGroups` only. Calling the same mount (unmount) again is safe: a group
 * that already did it answers `SEGMENT_EXISTS` (`SEGMENT_NOT_FOUND`), which the fan-out counts
 * as done. `code` and `retryable` are those of the first failure.
 */
export class GroupFanOutError extends ApiError {
  override readonly name = 'GroupFanOutError';

  constructor(
    readonly op: 'mountSegment' | 'unmountSegment',
    readonly segmentId: string,
    /** The groups that applied it (or had already). */
    readonly appliedGroups: readonly number[],
    /** The groups that did not, with their errors. */
    readonly failures: readonly { readonly group: number; readonly error: ApiError }[],
  ) {
    const first = failures[0]?.error;
    super(
      {
        code: first?.code ?? 'INTERNAL',
        message: `${op} ${JSON.stringify(segmentId)}: applied in groups [${appliedGroups.join(',')}], failed in groups [${failures.map((f) => f.group).join(',')}] (first: ${first?.message ?? '?'}); call it again to finish`,
        retryable: first?.retryable ?? false,
        details: { appliedGroups: [...appliedGroups], failedGroups: failures.map((f) => f.group) },
      },
      { cause: first },
    );
  }
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError
    ? err
    : new ApiError({ code: 'INTERNAL', message: String(err) }, { cause: err });
}

/** The client of a cluster of `members.length` groups (see the file's doc). */
export class GroupedClient implements UnderstudyClient {
  readonly #members: readonly Client[];
  readonly #groups: number;
  readonly #onClose: () => Promise<void>;
  #closing: Promise<void> | undefined;

  /**
   * `members[g]` is the client of group g, all with session id `sessionId`; `onClose` releases
   * what they share (the connection) once they are closed.
   */
  constructor(
    members: readonly Client[],
    readonly sessionId: string,
    onClose: () => Promise<void> = () => Promise.resolve(),
  ) {
    assertGroupCount(members.length);
    this.#members = members;
    this.#groups = members.length;
    this.#onClose = onClose;
  }

  /** The client of `key`'s group. */
  #of(key: string): Client {
    return this.#members[groupOfKey(key, this.#groups)] as Client;
  }

  /**
   * Mounts segment `segmentId` in every group, group g its slice `segmentSlice(size, g, G)`;
   * resolves once every group has it. A segment smaller than the group count is refused with
   * `INVALID_ARGUMENT`. Fails with {@link GroupFanOutError} when only some groups mounted it.
   */
  mountSegment(segmentId: string, nodeId: string, size: number): Promise<GroupsAck> {
    if (!Number.isSafeInteger(size) || size < this.#groups) {
      return Promise.reject(
        new ApiError({
          code: 'INVALID_ARGUMENT',
          message: `invalid size: a segment shared by ${this.#groups} groups needs at least ${this.#groups} bytes`,
          field: 'size',
          limit: this.#groups,
        }),
      );
    }
    return this.#fanOut('mountSegment', segmentId, 'SEGMENT_EXISTS', (member, g) =>
      member.mountSegmentSlice(segmentId, nodeId, segmentSlice(size, g, this.#groups)),
    );
  }

  /** Unmounts segment `segmentId` in every group (see {@link mountSegment} for partial failures). */
  unmountSegment(segmentId: string): Promise<GroupsAck> {
    return this.#fanOut('unmountSegment', segmentId, 'SEGMENT_NOT_FOUND', (member) =>
      member.unmountSegment(segmentId),
    );
  }

  async #fanOut(
    op: 'mountSegment' | 'unmountSegment',
    segmentId: string,
    alreadyDone: ApiErrorCode,
    call: (member: Client, group: number) => Promise<Ack>,
  ): Promise<GroupsAck> {
    const settled = await Promise.allSettled(this.#members.map((m, g) => call(m, g)));
    const acks: (Ack | null)[] = [];
    const applied: number[] = [];
    const failures: { group: number; error: ApiError }[] = [];
    settled.forEach((outcome, group) => {
      if (outcome.status === 'fulfilled') {
        acks.push(outcome.value);
        applied.push(group);
        return;
      }
      const error = asApiError(outcome.reason);
      acks.push(null);
      if (error.code === alreadyDone) applied.push(group);
      else failures.push({ group, error });
    });
    const fresh = acks.filter((a): a is Ack => a !== null);
    // Every group had it already: the call changes nothing, and says so as with one group.
    if (fresh.length === 0 && failures.length === 0) {
      throw asApiError((settled[0] as PromiseRejectedResult).reason);
    }
    if (failures.length > 0) {
      if (applied.length === 0) throw (failures[0] as { error: ApiError }).error;
      throw new GroupFanOutError(op, segmentId, applied, failures);
    }
    return { seq: (fresh[0] as Ack).seq, groups: acks };
  }

  putStart(key: string, size: number, replicaNum: number): Promise<Placement> {
    return this.#of(key).putStart(key, size, replicaNum);
  }
  putEnd(key: string): Promise<Ack> {
    return this.#of(key).putEnd(key);
  }
  putRevoke(key: string): Promise<Ack> {
    return this.#of(key).putRevoke(key);
  }
  remove(key: string): Promise<Ack> {
    return this.#of(key).remove(key);
  }
  get(key: string): Promise<ObjectRecord> {
    return this.#of(key).get(key);
  }
  exists(key: string): Promise<boolean> {
    return this.#of(key).exists(key);
  }

  putStartBatch(items: readonly PutStartItem[]): Promise<BatchResult<Placement>[]> {
    return this.#split(
      items,
      (item) => item.key,
      (member, part) => member.putStartBatch(part),
    );
  }
  putEndBatch(keys: readonly string[]): Promise<BatchResult<Ack>[]> {
    return this.#split(
      keys,
      (key) => key,
      (member, part) => member.putEndBatch(part),
    );
  }

  /**
   * A batch split by group: each group's items in their order, the parts sent at once, the
   * results put back in the caller's order. A part that fails as a whole (its group's deadline
   * passed, say) gives its error to each of its items; when every part fails, the call rejects
   * with the first part's error, as a batch of one group does.
   */
  async #split<Item, T>(
    items: readonly Item[],
    keyOf: (item: Item) => string,
    send: (member: Client, part: Item[]) => Promise<BatchResult<T>[]>,
  ): Promise<BatchResult<T>[]> {
    if (items.length > MAX_BATCH_ITEMS) {
      throw new ApiError({
        code: 'BAD_REQUEST',
        message: `invalid request: items: more than ${MAX_BATCH_ITEMS} items`,
        field: 'items',
        limit: MAX_BATCH_ITEMS,
      });
    }
    const parts = new Map<number, { items: Item[]; at: number[] }>();
    items.forEach((item, at) => {
      const group = groupOfKey(keyOf(item), this.#groups);
      let part = parts.get(group);
      if (part === undefined) parts.set(group, (part = { items: [], at: [] }));
      part.items.push(item);
      part.at.push(at);
    });
    const entries = [...parts];
    const settled = await Promise.allSettled(
      entries.map(([group, part]) => send(this.#members[group] as Client, part.items)),
    );
    if (settled.length > 0 && settled.every((s) => s.status === 'rejected')) {
      throw asApiError((settled[0] as PromiseRejectedResult).reason);
    }
    const results = new Array<BatchResult<T>>(items.length);
    settled.forEach((outcome, i) => {
      const part = (entries[i] as [number, { items: Item[]; at: number[] }])[1];
      part.at.forEach((at, k) => {
        if (outcome.status === 'rejected') {
          results[at] = { ok: false, error: asApiError(outcome.reason) };
          return;
        }
        const result = outcome.value[k];
        results[at] = result ?? {
          ok: false,
          error: new ApiError({ code: 'INTERNAL', message: 'fewer results than items' }),
        };
      });
    });
    return results;
  }

  on(event: 'failover', listener: (event: FailoverEvent) => void): () => void {
    const offs = this.#members.map((m) => m.on(event, listener));
    return () => offs.forEach((off) => off());
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#members.map((m) => m.close()));
      await this.#onClose();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * A client of the `groups` groups of `options.cluster`: member g over `transportFor(<cluster>-g<g>)`
 * on `clock`, all with one session id. With `owned` the members close their transports, then
 * `owned.onClose` runs (it closes the connection they share).
 */
export function groupedClientOver(
  transportFor: (groupCluster: string) => ApiClientTransport,
  options: ClientOptions,
  groups: number,
  clock: Clock,
  owned?: { readonly onClose: () => Promise<void> },
): GroupedClient {
  assertGroupCount(groups);
  const members: Client[] = [];
  let sessionId = options.sessionId;
  for (let g = 0; g < groups; g++) {
    const cluster = groupCluster(options.cluster, g, groups);
    const member = new Client(transportFor(cluster), owned !== undefined, {
      ...options,
      cluster,
      clock: options.clock ?? clock,
      ...(sessionId === undefined ? {} : { sessionId }),
    });
    sessionId = member.sessionId;
    members.push(member);
  }
  return new GroupedClient(members, sessionId as string, owned?.onClose);
}
