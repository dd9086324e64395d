import type { Etcd3 } from 'etcd3';
import { MemberIdTakenError, type LeaderView, type MemberRecord } from '../../ports/elector.ts';
import {
  DEFAULT_CALL_TIMEOUT_MS,
  EtcdUnavailableError,
  clusterPrefix,
  withTimeout,
} from './etcdClient.ts';
import { readLeader } from './etcdElection.ts';
import { asHostProcess, processGone, thisProcess, type HostProcess } from '../hostProcess.ts';

// The member registry: one record per node, bound to the node's lease.

/** `/understudy/<cluster>/members/`: the member registry prefix. */
export function membersPrefix(cluster: string): string {
  return `${clusterPrefix(cluster)}members/`;
}

function parseMember(value: Buffer): MemberRecord | null {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as Partial<MemberRecord>;
    if (typeof parsed.nodeId !== 'string') return null;
    return {
      nodeId: parsed.nodeId,
      role: String(parsed.role ?? ''),
      epoch: Number(parsed.epoch ?? 0),
      appliedSeq: Number(parsed.appliedSeq ?? 0),
      address: String(parsed.address ?? ''),
      updatedAt: Number(parsed.updatedAt ?? 0),
    };
  } catch {
    return null;
  }
}

/** A member value that does not parse: the holder is unknown but real. */
function holderless(value: Buffer): MemberRecord {
  return {
    nodeId: '',
    role: '',
    epoch: 0,
    appliedSeq: 0,
    address: `(unreadable record: ${value.toString('utf8').slice(0, 80)})`,
    updatedAt: 0,
  };
}

/** Every member record registered now (unreadable ones left out). */
export async function readMembers(
  client: Etcd3,
  cluster: string,
  timeoutMs: number,
): Promise<MemberRecord[]> {
  const response = await withTimeout(
    client.getAll().prefix(membersPrefix(cluster)).exec(),
    timeoutMs,
    'list members',
  );
  const members: MemberRecord[] = [];
  for (const kv of response.kvs) {
    const member = parseMember(kv.value);
    if (member !== null) members.push(member);
  }
  return members;
}

/**
 * The master view for status and client discovery: the leader and every registered member,
 * read now without a lease. Rejects with {@link EtcdUnavailableError} when etcd does not answer.
 */
export async function readMasterView(
  client: Etcd3,
  cluster: string,
  timeoutMs = DEFAULT_CALL_TIMEOUT_MS,
): Promise<{ leader: LeaderView | null; members: MemberRecord[] }> {
  const [leader, members] = await Promise.all([
    readLeader(client, cluster, timeoutMs),
    readMembers(client, cluster, timeoutMs),
  ]);
  return { leader, members };
}

/**
 * How long etcd still keeps lease `leaseId` (ms, whole seconds: etcd answers "expires in under
 * TTL + 1 s"; at most 0 once it expired and waits to be revoked, -1000 when it is gone), or
 * undefined when etcd does not answer.
 */
async function leaseRemainingMs(
  client: Etcd3,
  leaseId: string,
  callTimeoutMs: number,
): Promise<number | undefined> {
  try {
    const response = await withTimeout(
      client.leaseClient.leaseTimeToLive({ ID: leaseId }),
      callTimeoutMs,
      'lease time to live',
    );
    return Number(response.TTL) * 1000;
  } catch {
    return undefined;
  }
}

/**
 * Publishes `record` on lease `id`, with this process's {@link thisProcess} identity beside it:
 * creates its key if absent; else updates it only if one of the elector's leases (`id` or one in
 * `granted`) holds it (compare-and-set on its mod revision, so a holder that changed meanwhile
 * is seen). Another lease's holder that was a process of this host now gone (killed, crashed) is
 * no process at all: its lease is revoked (with the leader key, if it held it) and the key
 * created; resolves with that holder's record then. Throws {@link MemberIdTakenError} when
 * another lease holds it (a live process, or one on another host, whose lease only expiry
 * ends), {@link EtcdUnavailableError} when the key keeps changing.
 */
export async function publishMemberRecord(
  client: Etcd3,
  cluster: string,
  callTimeoutMs: number,
  lease: { readonly id: string; readonly granted: ReadonlySet<string> },
  record: MemberRecord,
): Promise<MemberRecord | undefined> {
  const { id, granted } = lease;
  const memberKey = `${membersPrefix(cluster)}${record.nodeId}`;
  const value = JSON.stringify({ ...record, process: thisProcess });
  let tookOverFrom: MemberRecord | undefined;
  for (let attempt = 0; ; attempt++) {
    const created = await withTimeout(
      client
        .if(memberKey, 'Create', '==', 0)
        .then(client.put(memberKey).value(value).lease(id))
        .else(client.get(memberKey))
        .commit(),
      callTimeoutMs,
      'publishMember',
    );
    if (created.succeeded) return tookOverFrom;
    const kv = created.responses[0]?.response_range.kvs[0];
    if (kv !== undefined && kv.lease !== id && !granted.has(kv.lease)) {
      const holder = parseMember(kv.value) ?? holderless(kv.value);
      if (attempt < 3 && processGone(holderProcess(kv.value))) {
        // Lease ids are never reused: this revokes the dead process's lease and nothing newer.
        // Failing (expired meanwhile, etcd slow), the next attempt reads the key again.
        await withTimeout(
          client.leaseClient.leaseRevoke({ ID: kv.lease }),
          callTimeoutMs,
          "revoke a gone process's lease",
        ).catch(() => undefined);
        tookOverFrom = holder;
        continue;
      }
      throw new MemberIdTakenError(
        record.nodeId,
        holder,
        await leaseRemainingMs(client, kv.lease, callTimeoutMs),
      );
    }
    if (kv !== undefined) {
      const updated = await withTimeout(
        client
          .if(memberKey, 'Mod', '==', kv.mod_revision)
          .then(client.put(memberKey).value(value).lease(id))
          .commit(),
        callTimeoutMs,
        'publishMember',
      );
      if (updated.succeeded) return tookOverFrom;
    }
    if (attempt >= 3) {
      throw new EtcdUnavailableError('publishMember (the member key keeps changing)', undefined);
    }
  }
}

/** The process a member value says published it, if it says. */
function holderProcess(value: Buffer): HostProcess | undefined {
  try {
    return asHostProcess((JSON.parse(value.toString('utf8')) as { process?: unknown }).process);
  } catch {
    return undefined;
  }
}
