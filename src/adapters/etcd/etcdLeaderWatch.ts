import type { Etcd3, Watcher } from 'etcd3';
import type { LeaderView } from '../../ports/elector.ts';
import { leaderKey, parseLeader, readLeader } from './etcdElection.ts';

/**
 * Watches `cluster`'s leader key: `onChange` hears the leader now, then every change (never the
 * same view twice in a row); the key is read again whenever the watch (re)connects, later reads
 * winning over earlier ones that answer late. Returns the function that stops it.
 */
export function watchLeader(
  client: Etcd3,
  cluster: string,
  callTimeoutMs: number,
  onChange: (leader: LeaderView | null) => void,
): () => void {
  const key = leaderKey(cluster);
  let active = true;
  let last: string | undefined;
  let watcher: Watcher | null = null;
  let generation = 0;
  const emit = (leader: LeaderView | null): void => {
    const fingerprint = JSON.stringify(leader);
    if (!active || fingerprint === last) return;
    last = fingerprint;
    onChange(leader);
  };
  /** Reads the key now; later reads win over earlier ones that answer late. */
  const refresh = (): void => {
    const mine = ++generation;
    readLeader(client, cluster, callTimeoutMs).then(
      (leader) => {
        if (mine === generation) emit(leader);
      },
      () => {
        // The watch reconnects and triggers another read.
      },
    );
  };
  client
    .watch()
    .key(key)
    .create()
    .then(
      (created) => {
        if (!active) {
          void created.cancel().catch(() => undefined);
          return;
        }
        watcher = created;
        created.on('connected', refresh);
        created.on('put', (kv) => {
          generation++;
          emit(parseLeader(kv));
        });
        created.on('delete', () => {
          generation++;
          emit(null);
        });
        created.on('error', () => undefined);
        refresh();
      },
      () => {
        // create() only fails when the client is closed.
      },
    );
  refresh();
  return () => {
    if (!active) return;
    active = false;
    void watcher?.cancel().catch(() => undefined);
  };
}
