import { UnderstudyError } from '../domain/model/understudyError.ts';
// Whether a node splits the keyspace into as many groups as its cluster. The count is fixed when
// the cluster is first created (the first node records it); a node with another count would own
// other shard ranges than its peers, so it must not start.

/**
 * The node's `--groups` is not the cluster's recorded group count. The node must not start:
 * exit code 2, as for a bad setting.
 */
export class GroupCountMismatchError extends UnderstudyError {
  override readonly name = 'GroupCountMismatchError';
  readonly code = 'GROUP_COUNT_MISMATCH';
  constructor(
    readonly cluster: string,
    /** This node's `--groups`. */
    readonly nodeGroups: number,
    /** The count recorded for the cluster. */
    readonly clusterGroups: number,
    /** Where the cluster's count is recorded (the etcd key). */
    readonly recordedAt: string,
  ) {
    super(
      `this node runs with --groups ${nodeGroups} (UNDERSTUDY_GROUPS), but cluster ${cluster} was ` +
        `created with ${clusterGroups} group${clusterGroups === 1 ? '' : 's'} (recorded at ` +
        `${recordedAt}): start it with --groups ${clusterGroups}; the count of a cluster cannot change`,
    );
  }
}

/** Throws {@link GroupCountMismatchError} unless `nodeGroups` is the cluster's recorded count. */
export function checkGroupCount(
  cluster: string,
  nodeGroups: number,
  clusterGroups: number,
  recordedAt: string,
): void {
  if (nodeGroups !== clusterGroups) {
    throw new GroupCountMismatchError(cluster, nodeGroups, clusterGroups, recordedAt);
  }
}
