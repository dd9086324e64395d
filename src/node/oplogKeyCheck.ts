import { UnderstudyError } from '../domain/model/understudyError.ts';
// Whether a node's OpLog key is the cluster's: compared by key id (batchSignature.ts), never by
// the key. A node with another key would pass over every message the primary writes and look
// caught up while it falls behind, so it must not start.

/** The value of a cluster whose log is not signed (the adapter records it as such). */
const NONE = 'none';

/** The settings that give a node its OpLog key, as an operator sets them. */
export const OPLOG_KEY_SETTING =
  '--oplog-key-file (UNDERSTUDY_OPLOG_KEY_FILE) or UNDERSTUDY_OPLOG_KEY';

/**
 * The node's OpLog key is not the cluster's (another key, a key where the cluster has none, or
 * none where it has one). The node must not start: exit code 2, as for a bad setting.
 */
export class OplogKeyMismatchError extends UnderstudyError {
  override readonly name = 'OplogKeyMismatchError';
  readonly code = 'OPLOG_KEY_MISMATCH';
  constructor(
    readonly cluster: string,
    /** This node's key id, or `none`. */
    readonly nodeKeyId: string,
    /** The key id recorded for the cluster, or `none`. */
    readonly clusterKeyId: string,
    /** Where the cluster's key id is recorded (the etcd key). */
    readonly recordedAt: string,
  ) {
    super(
      nodeKeyId === NONE
        ? `this node has no OpLog key, but cluster ${cluster} signs its log (key id ${clusterKeyId}, recorded at ${recordedAt}): set ${OPLOG_KEY_SETTING} to the cluster's key`
        : clusterKeyId === NONE
          ? `this node's OpLog key (key id ${nodeKeyId}, from ${OPLOG_KEY_SETTING}) is set, but cluster ${cluster} does not sign its log (key id none, recorded at ${recordedAt}): start it without a key, or turn signing on as docs/operations.md "Security" says`
          : `this node's OpLog key (key id ${nodeKeyId}, from ${OPLOG_KEY_SETTING}) is not cluster ${cluster}'s (key id ${clusterKeyId}, recorded at ${recordedAt}): set ${OPLOG_KEY_SETTING} to the cluster's key`,
    );
  }
}

/**
 * Throws {@link OplogKeyMismatchError} unless `nodeKeyId` (undefined: no key) is the cluster's
 * recorded key id (`none`: an unsigned log).
 */
export function checkOplogKeyId(
  cluster: string,
  nodeKeyId: string | undefined,
  clusterKeyId: string,
  recordedAt: string,
): void {
  const mine = nodeKeyId ?? NONE;
  if (mine !== clusterKeyId) {
    throw new OplogKeyMismatchError(cluster, mine, clusterKeyId, recordedAt);
  }
}
