// `understudy checkpoint accept-loss --seq N`: the operator accepts that the OpLog stream lost
// its tail and makes the cluster go on from the newest checkpoint (see node/streamTail.ts).
import type { Command } from 'commander';
import { connect } from '@nats-io/transport-node';
import { readMasterView } from '../adapters/etcd/etcdMembers.ts';
import { NatsCheckpointStore } from '../adapters/nats/natsCheckpointStore.ts';
import { createNatsOpLog } from '../adapters/nats/natsOpLog.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { clusterAccessSettings, natsSourceSettings } from '../config/config.ts';
import { natsConnectionOptions } from '../config/credentials.ts';
import { ConfigError } from '../config/settings.ts';
import { acceptTailLoss, AcceptLossRefusedError, type AcceptedLoss } from '../node/streamTail.ts';
import { loadNatsSourceConfig } from '../tools/log/logSource.ts';
import { loadClusterAccess, openClusterEtcd } from './clusterOptions.ts';
import { addSettingOptions, parseSeqFlag } from './settingOptions.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';
import { readMetadataCheckpoint } from '../node/metadataDomain.ts';

/** Exit codes of `understudy checkpoint accept-loss`. */
export const ACCEPT_LOSS_EXIT = {
  ok: 0,
  /** Refused (a node serves, the checkpoint does not read back) or unreachable: nothing changed. */
  failed: 1,
  /** Usage: a bad setting, `--seq` is not the newest checkpoint's, or there is no loss. */
  usage: 2,
} as const;

/** A node holds the leader key: the cluster serves, there is nothing to accept. */
class PrimaryServesError extends UnderstudyError {
  override readonly name = 'PrimaryServesError';
  readonly code = 'PRIMARY_SERVES';
  constructor(
    readonly nodeId: string,
    readonly epoch: number,
  ) {
    super(
      `${nodeId} holds the leader key (epoch ${epoch}): accept-loss is for a cluster whose nodes failed closed; nothing was changed`,
    );
  }
}

/** Refuses while a node holds the leader key, then accepts the loss (see acceptTailLoss). */
async function acceptLoss(flags: Record<string, unknown>, seq: number): Promise<AcceptedLoss> {
  const access = loadClusterAccess(flags);
  const source = loadNatsSourceConfig(flags);
  const etcd = await openClusterEtcd(access);
  try {
    const { leader } = await readMasterView(etcd, access.cluster);
    if (leader !== null) throw new PrimaryServesError(leader.nodeId, leader.epoch);
  } finally {
    etcd.close();
  }
  const nc = await connect({
    servers: [...source.servers],
    name: 'understudy-accept-loss',
    timeout: 5_000,
    ...natsConnectionOptions(source.security),
  });
  try {
    const checkpoints = await NatsCheckpointStore.open({ nc, cluster: source.cluster });
    const opLog = await createNatsOpLog({
      nc,
      cluster: source.cluster,
      existingOnly: true,
      ...(source.signingKey === undefined ? {} : { signingKey: source.signingKey }),
    });
    try {
      return await acceptTailLoss(
        {
          opLog,
          checkpoints,
          clock: systemClock,
          readCheckpoint: readMetadataCheckpoint,
        },
        seq,
      );
    } finally {
      await opLog.close();
    }
  } finally {
    await nc.close();
  }
}

function describe(accepted: AcceptedLoss): string {
  const { checkpoint, loss, removed } = accepted;
  return (
    `loss accepted: the cluster goes on from checkpoint ${checkpoint.name} (seq ${checkpoint.appliedSeq}, ` +
    `${checkpoint.objectCount} objects); the stream ended at entry ${loss.streamLastSeq} ` +
    `(stream seq ${loss.streamLastStreamSeq}) and was emptied, the next entry is ${checkpoint.appliedSeq + 1}` +
    (removed.length === 0
      ? ''
      : `; removed older checkpoints past its end: ${removed.join(', ')}`) +
    '\n'
  );
}

/** Adds `accept-loss` to the `checkpoint` command. */
export function registerAcceptLossCommand(checkpoint: Command): void {
  addSettingOptions(
    checkpoint
      .command('accept-loss')
      .description(
        'accept that the OpLog stream lost its tail and go on from the newest checkpoint (entries acknowledged after it are lost); only while every node failed closed',
      ),
    { ...clusterAccessSettings, ...natsSourceSettings },
  )
    .requiredOption(
      '--seq <seq>',
      "the newest checkpoint's seq, as the nodes' failClosed says",
      parseSeqFlag,
    )
    .option('--json', 'what was done as JSON')
    .action(async (flags: Record<string, unknown>) => {
      try {
        const accepted = await acceptLoss(flags, flags['seq'] as number);
        process.stdout.write(
          flags['json'] === true ? `${JSON.stringify(accepted, null, 2)}\n` : describe(accepted),
        );
      } catch (err) {
        const usage =
          err instanceof ConfigError ||
          (err instanceof AcceptLossRefusedError && err.reason !== 'unreadable');
        process.stderr.write(
          `understudy checkpoint accept-loss: ${(err as Error).message ?? String(err)}\n`,
        );
        process.exit(usage ? ACCEPT_LOSS_EXIT.usage : ACCEPT_LOSS_EXIT.failed);
      }
    });
}
