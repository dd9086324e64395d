// `understudy switchover [--to NODE]`: a planned move of the primary role, timed from the
// request to the new primary serving.
import type { Command } from 'commander';
import { UnreachableError } from './unreachable.ts';
import type { Etcd3 } from 'etcd3';
import type { LeaderView } from '../ports/elector.ts';
import { ConfigError } from '../config/settings.ts';
import {
  addClusterOptions,
  durationFlag,
  openClusterEtcd,
  loadClusterAccess,
} from './clusterOptions.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';
import { clusterGroupCount, GROUP_OPTION_HELP, groupFlag, groupTarget } from './groupOption.ts';

/** Exit codes of `understudy switchover`. */
export const SWITCHOVER_EXIT = {
  /** A new primary serves (the named one, with `--to`). */
  ok: 0,
  /** The primary refused or failed, etcd could not be read, or another node than `--to` won. */
  failed: 1,
  /** Bad flags, environment or config. */
  usage: 2,
  /** No primary to switch from (no leader key). */
  noPrimary: 3,
  /** No new primary served within `--timeout`. */
  timeout: 4,
} as const;

/** The switchover could not be done; `exitCode` is one of {@link SWITCHOVER_EXIT}. */
export class SwitchoverCommandError extends UnderstudyError {
  override readonly name = 'SwitchoverCommandError';
  readonly code = 'SWITCHOVER_COMMAND';
  constructor(
    readonly exitCode: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What a switchover did, as the command prints it. */
export interface SwitchoverReport {
  readonly from: string;
  readonly fromEpoch: number;
  readonly to: string;
  readonly toEpoch: number;
  /** The last entry of the old primary (the new one's EPOCH fence follows it). */
  readonly handedOverAtSeq: number | null;
  /** From sending the request to the old primary deleting its leader key (ms). */
  readonly handoverMs: number | null;
  /** From sending the request to the new primary answering `/readyz` as a serving primary (ms). */
  readonly tookMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function readLeader(client: Etcd3, cluster: string): Promise<LeaderView | null> {
  const { readMasterView } = await import('../adapters/etcd/etcdMembers.ts');
  return (await readMasterView(client, cluster)).leader;
}

/** The first election won after `afterEpoch`, at most at `throughEpoch` (null: none found). */
async function firstElectionAfter(
  client: Etcd3,
  cluster: string,
  afterEpoch: number,
  throughEpoch: number,
): Promise<{ readonly nodeId: string; readonly epoch: number } | null> {
  const { readFirstElectionAfter } = await import('../adapters/etcd/etcdElection.ts');
  return readFirstElectionAfter(client, cluster, afterEpoch, throughEpoch);
}

/**
 * True when the node at `address` says it is a primary whose API listener is up (its member of
 * `group`, when its process hosts several).
 */
async function servingPrimary(
  address: string,
  timeoutMs: number,
  group: number | undefined,
): Promise<boolean> {
  try {
    const path = group === undefined ? '/readyz' : `/readyz?group=${group}`;
    const res = await fetch(`${address}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { ready?: unknown; role?: unknown };
    return res.status === 200 && body.role === 'primary';
  } catch {
    return false;
  }
}

/**
 * Moves the primary role: finds the primary (leader key), POSTs `/admin/switchover[?to=NODE]`
 * to it, then waits until a leader key with a newer epoch names a node that serves as primary.
 * Rejects with {@link SwitchoverCommandError} (its `exitCode` says why).
 */
export async function switchover(
  client: Etcd3,
  cluster: string,
  options: {
    readonly to?: string;
    readonly timeoutMs: number;
    /** The etcd endpoints, for the message when etcd does not answer. */
    readonly etcd?: readonly string[];
    /**
     * The group, in a cluster of several (`cluster` is then the group's name, `<cluster>-gN`):
     * the nodes' HTTP endpoints are asked with `?group=N`.
     */
    readonly group?: number;
  },
): Promise<SwitchoverReport> {
  const leader = await readLeader(client, cluster).catch((err: unknown) => {
    const unreachable = new UnreachableError('etcd', options.etcd ?? ['?'], err);
    throw new SwitchoverCommandError(SWITCHOVER_EXIT.failed, unreachable.message, {
      cause: err,
    });
  });
  if (leader === null) {
    throw new SwitchoverCommandError(
      SWITCHOVER_EXIT.noPrimary,
      `cluster ${cluster} has no primary`,
    );
  }
  if (options.to === leader.nodeId) {
    throw new SwitchoverCommandError(
      SWITCHOVER_EXIT.failed,
      `${options.to} is already the primary`,
    );
  }
  const started = performance.now();
  const deadline = started + options.timeoutMs;
  const params = new URLSearchParams();
  if (options.to !== undefined) params.set('to', options.to);
  if (options.group !== undefined) params.set('group', String(options.group));
  const query = params.size === 0 ? '' : `?${params.toString()}`;
  let answer: Response;
  try {
    answer = await fetch(`${leader.address}/admin/switchover${query}`, {
      method: 'POST',
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    throw new SwitchoverCommandError(
      SWITCHOVER_EXIT.failed,
      `the primary ${leader.nodeId} at ${leader.address} did not answer: ${String(err)}`,
      { cause: err },
    );
  }
  const handoverMs = Math.round(performance.now() - started);
  const body = (await answer.json().catch(() => ({}))) as {
    error?: unknown;
    appliedSeq?: unknown;
  };
  if (!answer.ok) {
    const why = typeof body.error === 'string' ? body.error : `HTTP ${answer.status}`;
    throw new SwitchoverCommandError(
      SWITCHOVER_EXIT.failed,
      `the primary ${leader.nodeId} refused: ${why}`,
    );
  }
  for (;;) {
    const next = await readLeader(client, cluster).catch(() => null);
    if (
      next !== null &&
      next.epoch > leader.epoch &&
      (await servingPrimary(next.address, 1000, options.group))
    ) {
      const tookMs = Math.round(performance.now() - started);
      // The handover made the first election after it; the group may have moved on since (a
      // group's primary hands back to the node it prefers), and the leader read now says so.
      const made =
        next.nodeId === options.to
          ? next
          : ((await firstElectionAfter(client, cluster, leader.epoch, next.epoch).catch(
              () => null,
            )) ?? next);
      if (options.to !== undefined && made.nodeId !== options.to) {
        throw new SwitchoverCommandError(
          SWITCHOVER_EXIT.failed,
          `${made.nodeId} became primary (epoch ${made.epoch}), not ${options.to}, in ${tookMs} ms`,
        );
      }
      return {
        from: leader.nodeId,
        fromEpoch: leader.epoch,
        to: made.nodeId,
        toEpoch: made.epoch,
        handedOverAtSeq: typeof body.appliedSeq === 'number' ? body.appliedSeq : null,
        handoverMs,
        tookMs,
      };
    }
    if (performance.now() >= deadline) {
      throw new SwitchoverCommandError(
        SWITCHOVER_EXIT.timeout,
        `no new primary served within ${options.timeoutMs} ms`,
      );
    }
    await sleep(20);
  }
}

/** `understudy switchover`: see {@link switchover}; exit codes {@link SWITCHOVER_EXIT}. */
export function registerSwitchoverCommand(program: Command): void {
  const command = program
    .command('switchover')
    .description(
      'planned switchover: the primary hands over (to --to NODE, or the first ready standby) and stays up as a standby',
    );
  addClusterOptions(command)
    .option('--to <node>', 'the node to hand over to (it must be a standby that has caught up)')
    .option('--group <n>', GROUP_OPTION_HELP)
    .option('--timeout <duration>', 'how long to wait for a new primary to serve', '30s')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Prints the time from the request to the new primary serving (its /readyz).',
        'Exit codes: 0 ok; 1 refused or failed (or another node than --to won); 2 usage;',
        '3 no primary; 4 timeout.',
        '',
        'Examples:',
        '  understudy switchover --cluster main --etcd http://127.0.0.1:2379',
        '  understudy switchover --cluster main --to n2 --timeout 10s --json',
        '  understudy switchover --cluster main --group 2 --to n3   (a cluster of several groups)',
        '  UNDERSTUDY_CLUSTER=main UNDERSTUDY_ETCD=http://10.0.0.1:2379 understudy switchover',
      ].join('\n'),
    )
    .action(async (flags: Record<string, unknown>) => {
      let client: Etcd3 | undefined;
      try {
        const access = loadClusterAccess(flags);
        const timeoutMs = durationFlag(flags['timeout'], '--timeout', 30_000);
        const to = flags['to'];
        if (to !== undefined && (typeof to !== 'string' || to === '')) {
          throw new ConfigError(['--to needs a node id']);
        }
        const group = groupFlag(flags['group']);
        client = await openClusterEtcd(access);
        const groups = await clusterGroupCount(client, access.cluster).catch((err: unknown) => {
          throw new UnreachableError('etcd', access.etcd, err);
        });
        const target = groupTarget(access.cluster, group, groups);
        const report = await switchover(client, target, {
          ...(typeof to === 'string' ? { to } : {}),
          ...(groups > 1 && group !== undefined ? { group } : {}),
          timeoutMs,
          etcd: access.etcd,
        });
        process.stdout.write(
          flags['json'] === true
            ? `${JSON.stringify(report)}\n`
            : `switchover ${report.from} (epoch ${report.fromEpoch}) -> ${report.to} (epoch ${report.toEpoch}) in ${report.tookMs} ms (handover ${report.handoverMs ?? '-'} ms, at seq ${report.handedOverAtSeq ?? '-'})\n`,
        );
        process.exitCode = SWITCHOVER_EXIT.ok;
      } catch (err) {
        process.stderr.write(
          `understudy switchover: ${err instanceof Error ? err.message : String(err)}\n`,
        );
        process.exitCode =
          err instanceof ConfigError
            ? SWITCHOVER_EXIT.usage
            : err instanceof SwitchoverCommandError
              ? err.exitCode
              : SWITCHOVER_EXIT.failed;
      } finally {
        client?.close();
      }
    });
}
