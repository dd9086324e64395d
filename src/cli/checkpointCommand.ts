// `understudy checkpoint list|verify|create|accept-loss`: the checkpoints in a cluster's object store bucket.
import {
  clusterGroupCount,
  GROUP_OPTION_HELP,
  groupFlag,
  groupTarget,
  namedGroupCluster,
} from './groupOption.ts';
import { request } from 'node:http';
import type { Command } from 'commander';
import { connect } from '@nats-io/transport-node';
import { readMasterView } from '../adapters/etcd/etcdMembers.ts';
import { checkpointBucketName, NatsCheckpointStore } from '../adapters/nats/natsCheckpointStore.ts';
import { systemClock } from '../adapters/systemClock.ts';
import { digestHex, stateDigest } from '../domain/log/checksum.ts';
import type { CheckpointInfo } from '../ports/checkpointStore.ts';
import { chooseCheckpointWriter } from '../node/checkpoints/checkpointer.ts';
import { loadCheckpoint } from '../node/checkpoints/loadCheckpoint.ts';
import { natsConnectionOptions } from '../config/credentials.ts';
import { CHECKPOINT_PATH } from '../process/checkpointRoute.ts';
import { ConfigError } from '../config/settings.ts';
import { addClusterOptions, loadClusterAccess, openClusterEtcd } from './clusterOptions.ts';
import { loadNatsSourceConfig, type NatsSourceConfig } from '../tools/log/logSource.ts';
import { addNatsSourceOptions } from './settingOptions.ts';
import { registerAcceptLossCommand } from './acceptLossCommand.ts';
import { causeText, reaching } from './unreachable.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';
import { readMetadataCheckpoint } from '../node/metadataDomain.ts';

/** Exit codes of `understudy checkpoint`. */
export const CHECKPOINT_EXIT = {
  ok: 0,
  /** The store or a node could not be reached, or the write failed. */
  failed: 1,
  usage: 2,
  /** `verify`: at least one checkpoint is corrupt. */
  corrupt: 3,
} as const;

/**
 * How long `checkpoint create` waits for the node's answer: the node answers once the checkpoint
 * is written, read back and published, which takes minutes for a state of millions of objects.
 */
const CREATE_TIMEOUT_MS = 10 * 60_000;

/**
 * POSTs to `url` and reads the answer, failing after `timeoutMs` without one. Not `fetch`:
 * its HTTP client (undici) gives up on an answer whose headers take over 300 s, whatever the
 * caller's own deadline ("Headers Timeout Error" from a checkpoint of 10M objects).
 */
function post(url: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A usage error of `understudy checkpoint` (exit 2): a name or node that does not exist. */
export class CheckpointUsageError extends UnderstudyError {
  override readonly name = 'CheckpointUsageError';
  readonly code = 'CHECKPOINT_USAGE';
}

/** One checkpoint as `verify` judged it. */
export interface VerifiedCheckpoint {
  readonly name: string;
  readonly appliedSeq: number;
  readonly ok: boolean;
  /** What was wrong; undefined when ok. */
  readonly problem?: string;
  readonly tookMs: number;
}

/**
 * Opens the checkpoint bucket of `cluster` (of its group `group` when one is named) to read it,
 * and closes the connection after `use`. It never creates the bucket: a mistyped `--cluster`,
 * or `--group` on a cluster of one group, would leave an empty bucket behind and list nothing.
 * A bucket that does not exist is refused with {@link CheckpointUsageError} saying which name
 * does exist.
 */
async function withStore<T>(
  config: NatsSourceConfig,
  group: number | undefined,
  use: (store: NatsCheckpointStore) => Promise<T>,
): Promise<T> {
  const nc = await reaching('NATS', config.servers, () =>
    connect({
      servers: [...config.servers],
      name: 'understudy-checkpoint',
      timeout: 5_000,
      ...natsConnectionOptions(config.security),
    }),
  );
  try {
    const existing = (cluster: string) => NatsCheckpointStore.openExisting({ nc, cluster });
    const named = namedGroupCluster(config.cluster, group);
    const store = await existing(named);
    if (store !== undefined) return await use(store);
    const bucket = checkpointBucketName(named);
    if (group !== undefined && (await existing(config.cluster)) !== undefined) {
      throw new CheckpointUsageError(
        `cluster ${config.cluster} has one group: leave --group out (there is no bucket ${bucket})`,
      );
    }
    if (
      group === undefined &&
      (await existing(namedGroupCluster(config.cluster, 0))) !== undefined
    ) {
      throw new CheckpointUsageError(
        `cluster ${config.cluster} has several groups: name one with --group N`,
      );
    }
    throw new CheckpointUsageError(
      `there is no checkpoint bucket ${bucket} on this NATS: no node of cluster ${named} has run here (check --cluster and --nats)`,
    );
  } finally {
    await nc.close();
  }
}

/** Reads every checkpoint (or the one named) back and checks its chunk CRCs and digest. */
export async function verifyCheckpoints(
  store: NatsCheckpointStore,
  name?: string,
): Promise<VerifiedCheckpoint[]> {
  const listed = await store.list();
  const chosen = name === undefined ? listed : listed.filter((c) => c.name === name);
  if (name !== undefined && chosen.length === 0)
    throw new CheckpointUsageError(`no checkpoint ${name}`);
  const out: VerifiedCheckpoint[] = [];
  for (const info of chosen) {
    const started = performance.now();
    try {
      const state = await loadCheckpoint(store, info, systemClock, readMetadataCheckpoint);
      const digest = stateDigest(state);
      out.push(
        digest === info.stateDigest
          ? {
              name: info.name,
              appliedSeq: info.appliedSeq,
              ok: true,
              tookMs: performance.now() - started,
            }
          : {
              name: info.name,
              appliedSeq: info.appliedSeq,
              ok: false,
              problem: `digest ${digest}, the metadata says ${info.stateDigest}`,
              tookMs: performance.now() - started,
            },
      );
    } catch (err) {
      out.push({
        name: info.name,
        appliedSeq: info.appliedSeq,
        ok: false,
        problem: String(err),
        tookMs: performance.now() - started,
      });
    }
  }
  return out;
}

function ageText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** The `list` table: newest first. */
export function renderCheckpointTable(listed: readonly CheckpointInfo[], now: number): string {
  if (listed.length === 0) return 'no checkpoints\n';
  return table(
    ['NAME', 'SEQ', 'STREAM_SEQ', 'OBJECTS', 'SESSIONS', 'BYTES', 'AGE', 'WRITER', 'DIGEST'],
    listed.map((c) => [
      c.name,
      String(c.appliedSeq),
      String(c.lastStreamSeq),
      String(c.objectCount),
      String(c.sessionCount),
      String(c.bytes),
      ageText(now - c.createdAt),
      c.writer,
      digestHex(c.stateDigest),
    ]),
  );
}

const CHECKPOINT_HELP = `
A node writes a checkpoint (its state at a seq) every --checkpoint-interval-entries entries or
--checkpoint-interval, keeps --checkpoint-keep of them, and trims the stream below the oldest.
'understudy replay' and 'understudy export' start from them.

Examples:
  understudy checkpoint list --cluster main --nats nats://127.0.0.1:4222
  understudy checkpoint list --cluster main --group 2   (group 2 of a cluster of several groups)
  understudy checkpoint verify --cluster main --nats nats://127.0.0.1:4222 --json
  understudy checkpoint create --cluster main --etcd http://127.0.0.1:2379 --node n2
  understudy checkpoint create --cluster main --etcd http://127.0.0.1:2379 --group 2
Exit codes: 0 ok; 1 the store or a node could not be reached, or the write failed; 2 usage
(also: list and verify found no bucket of that cluster or group);
3 (verify) a checkpoint is corrupt.`;

function fail(err: unknown): never {
  if (err instanceof CheckpointUsageError || err instanceof ConfigError) {
    process.stderr.write(`understudy checkpoint: ${err.message}\n`);
    process.exit(CHECKPOINT_EXIT.usage);
  }
  process.stderr.write(
    `understudy checkpoint: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(CHECKPOINT_EXIT.failed);
}

export function registerCheckpointCommand(program: Command): void {
  const checkpoint = program
    .command('checkpoint')
    .description(
      "list, verify or create the cluster's checkpoints (NATS object store bucket), or go on from the newest after the stream lost its tail",
    )
    .addHelpText('after', CHECKPOINT_HELP);

  addNatsSourceOptions(checkpoint.command('list').description('the checkpoints, newest first'))
    .option('--json', 'a JSON array')
    .option('--group <n>', GROUP_OPTION_HELP)
    .action(async (flags: Record<string, unknown>) => {
      try {
        const listed = await withStore(
          loadNatsSourceConfig(flags),
          groupFlag(flags['group']),
          (store) => store.list(),
        );
        process.stdout.write(
          flags['json'] === true
            ? `${JSON.stringify(listed, null, 2)}\n`
            : renderCheckpointTable(listed, Date.now()),
        );
      } catch (err) {
        fail(err);
      }
    });

  addNatsSourceOptions(
    checkpoint
      .command('verify [name]')
      .description('read checkpoints back, check every chunk CRC and the state digest'),
  )
    .option('--json', 'a JSON array')
    .option('--group <n>', GROUP_OPTION_HELP)
    .action(async (name: string | undefined, flags: Record<string, unknown>) => {
      try {
        const results = await withStore(
          loadNatsSourceConfig(flags),
          groupFlag(flags['group']),
          (store) => verifyCheckpoints(store, name),
        );
        process.stdout.write(
          flags['json'] === true
            ? `${JSON.stringify(results, null, 2)}\n`
            : results.length === 0
              ? 'no checkpoints\n'
              : table(
                  ['NAME', 'SEQ', 'RESULT', 'MS'],
                  results.map((r) => [
                    r.name,
                    String(r.appliedSeq),
                    r.ok ? 'ok' : `CORRUPT: ${r.problem ?? ''}`,
                    String(Math.round(r.tookMs)),
                  ]),
                ),
        );
        process.exitCode = results.every((r) => r.ok)
          ? CHECKPOINT_EXIT.ok
          : CHECKPOINT_EXIT.corrupt;
      } catch (err) {
        fail(err);
      }
    });

  addClusterOptions(
    checkpoint
      .command('create')
      .description(
        'ask a node to write a checkpoint now (default: the standby that writes them, else the primary)',
      ),
  )
    .option('--node <id>', 'the node to ask')
    .option('--json', 'the new checkpoint as JSON')
    .option('--group <n>', GROUP_OPTION_HELP)
    .action(async (flags: Record<string, unknown>) => {
      try {
        const access = loadClusterAccess(flags);
        const group = groupFlag(flags['group']);
        const client = await openClusterEtcd(access);
        let view;
        let groups;
        try {
          groups = await reaching('etcd', access.etcd, () =>
            clusterGroupCount(client, access.cluster),
          );
          const target = groupTarget(access.cluster, group, groups);
          view = await reaching('etcd', access.etcd, () => readMasterView(client, target));
        } finally {
          client.close();
        }
        const wanted =
          typeof flags['node'] === 'string'
            ? flags['node']
            : (chooseCheckpointWriter(
                view.members,
                Math.max(0, ...view.members.map((m) => m.appliedSeq)),
                Date.now(),
                1000,
                10_000,
              ) ?? view.leader?.nodeId);
        const member = view.members.find((m) => m.nodeId === wanted);
        if (member === undefined)
          throw new CheckpointUsageError(
            wanted === undefined ? 'no node to ask (no members)' : `no member ${wanted}`,
          );
        // A process hosting several groups answers for group N's member at `?group=N`.
        const path = groups > 1 ? `${CHECKPOINT_PATH}?group=${group}` : CHECKPOINT_PATH;
        const res = await post(`${member.address}${path}`, CREATE_TIMEOUT_MS).catch(
          (err: unknown) => {
            throw new Error(
              `cannot reach node ${member.nodeId} at ${member.address}: ${causeText(err)}`,
              { cause: err },
            );
          },
        );
        const body = JSON.parse(res.text) as CheckpointInfo & { error?: string };
        if (res.status !== 200) throw new Error(`${member.nodeId}: ${body.error ?? res.status}`);
        process.stdout.write(
          flags['json'] === true
            ? `${JSON.stringify(body, null, 2)}\n`
            : `checkpoint ${body.name} written by ${member.nodeId}: seq ${body.appliedSeq}, ${body.objectCount} objects, ${body.bytes} bytes\n`,
        );
      } catch (err) {
        fail(err);
      }
    });

  registerAcceptLossCommand(checkpoint);
}
