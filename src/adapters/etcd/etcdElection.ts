import type { Etcd3, IKeyValue } from 'etcd3';
import type { ElectionVerdict, LeaderView } from '../../ports/elector.ts';
import { clusterPrefix, DEFAULT_CALL_TIMEOUT_MS, withTimeout } from './etcdClient.ts';

// The keys of an election and how a fence's claim is checked against them.

/** `/understudy/<cluster>/leader`: the key whose create revision is the primary's epoch. */
export function leaderKey(cluster: string): string {
  return `${clusterPrefix(cluster)}leader`;
}

/**
 * `/understudy/<cluster>/elections/`: one record per election won, created in the campaign's
 * transaction (so its create revision is the epoch) and bound to no lease, so it outlives the
 * leader key and etcd's compaction of its history.
 */
export function electionsPrefix(cluster: string): string {
  return `${clusterPrefix(cluster)}elections/`;
}

/** The leader key's value with its create revision as the epoch, or null when it does not parse. */
export function parseLeader(kv: Pick<IKeyValue, 'value' | 'create_revision'>): LeaderView | null {
  try {
    const parsed = JSON.parse(kv.value.toString('utf8')) as Partial<LeaderView>;
    if (typeof parsed.nodeId !== 'string') return null;
    return {
      nodeId: parsed.nodeId,
      address: typeof parsed.address === 'string' ? parsed.address : '',
      epoch: Number(kv.create_revision),
      ...(typeof parsed.handoverTo === 'string' ? { handoverTo: parsed.handoverTo } : {}),
    };
  } catch {
    return null;
  }
}

/** The holder named by an election record (see {@link electionsPrefix}), or null. */
function parseRecord(value: Buffer): string | null {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as { nodeId?: unknown };
    return typeof parsed.nodeId === 'string' ? parsed.nodeId : null;
  } catch {
    return null;
  }
}

/**
 * The oldest election record created at a revision in `[from, to]`, read within `timeoutMs`.
 * `from` must be at least 1 (etcd reads a create-revision bound of 0 as none).
 */
async function firstRecordIn(
  client: Etcd3,
  cluster: string,
  from: number,
  to: number,
  timeoutMs: number,
): Promise<IKeyValue | undefined> {
  const records = await withTimeout(
    client
      .getAll()
      .prefix(electionsPrefix(cluster))
      .minCreateRevision(from)
      .maxCreateRevision(to)
      .sort('Create', 'Ascend')
      .limit(1)
      .exec(),
    timeoutMs,
    'get election record',
  );
  return records.kvs[0];
}

/**
 * The first election won after `afterEpoch` and at most at `throughEpoch` (its holder and epoch),
 * from the election records; null when there is none or it does not parse.
 */
export async function readFirstElectionAfter(
  client: Etcd3,
  cluster: string,
  afterEpoch: number,
  throughEpoch: number,
  timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
): Promise<{ readonly nodeId: string; readonly epoch: number } | null> {
  const first = await firstRecordIn(client, cluster, afterEpoch + 1, throughEpoch, timeoutMs);
  const holder = first === undefined ? null : parseRecord(first.value);
  return first === undefined || holder === null
    ? null
    : { nodeId: holder, epoch: Number(first.create_revision) };
}

/**
 * Whether `nodeId` won the leader key at revision `epoch`: the election record created at that
 * revision names it (a live key, so compaction changes nothing). A revision without a record is no
 * election, except for a win of a version that wrote none: then the leader key as it is now, or as
 * it was at that revision in etcd's history; once etcd compacted that away, no election either.
 */
export async function readElection(
  client: Etcd3,
  cluster: string,
  epoch: number,
  nodeId: string,
  timeoutMs: number,
): Promise<ElectionVerdict> {
  // etcd reads a create-revision bound of 0 as none: a claim must name a real revision.
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    return { kind: 'notElected', why: `${epoch} is not a revision` };
  }
  const record = await firstRecordIn(client, cluster, epoch, epoch, timeoutMs);
  if (record !== undefined) {
    const holder = parseRecord(record.value);
    return holder === nodeId
      ? { kind: 'elected' }
      : { kind: 'notElected', why: `revision ${epoch} elected ${holder ?? '(unreadable record)'}` };
  }
  return readElectionWithoutRecord(client, cluster, epoch, nodeId, timeoutMs);
}

/** {@link readElection} of a revision no election record was created at. */
async function readElectionWithoutRecord(
  client: Etcd3,
  cluster: string,
  epoch: number,
  nodeId: string,
  timeoutMs: number,
): Promise<ElectionVerdict> {
  const key = leaderKey(cluster);
  const now = await withTimeout(client.get(key).exec(), timeoutMs, 'get leader');
  const judge = (kv: IKeyValue | undefined, when: string): ElectionVerdict => {
    const holder = kv === undefined ? null : parseLeader(kv);
    if (holder === null || holder.epoch !== epoch) {
      return {
        kind: 'notElected',
        why: `no election record and the leader key was not created at revision ${epoch}`,
      };
    }
    return holder.nodeId === nodeId
      ? { kind: 'elected' }
      : { kind: 'notElected', why: `revision ${epoch} elected ${holder.nodeId} ${when}` };
  };
  const current = now.kvs[0];
  if (current !== undefined && Number(current.create_revision) === epoch) return judge(current, '');
  // A real win committed before its EPOCH entry was appended, so before this read.
  if (epoch > Number(now.header.revision)) {
    return {
      kind: 'notElected',
      why: `revision ${epoch} is beyond etcd's current revision ${now.header.revision}`,
    };
  }
  try {
    const then = await withTimeout(
      client.get(key).revision(epoch).exec(),
      timeoutMs,
      'get leader at revision',
    );
    return judge(then.kvs[0], `at that revision`);
  } catch (err) {
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    if (/compacted/i.test(String(cause))) {
      // Every win of this version has a record: a fence without one is a forgery or a win of an
      // older version whose history is gone. Neither is checked any more, so neither counts.
      return {
        kind: 'notElected',
        why: `no election record at revision ${epoch}, and etcd compacted the leader key's history there (${String(cause)})`,
      };
    }
    throw err;
  }
}

/** The leader key as stored now, or null when there is none. */
export async function readLeader(
  client: Etcd3,
  cluster: string,
  timeoutMs: number,
): Promise<LeaderView | null> {
  const response = await withTimeout(
    client.get(leaderKey(cluster)).exec(),
    timeoutMs,
    'get leader',
  );
  const kv = response.kvs[0];
  return kv === undefined ? null : parseLeader(kv);
}
