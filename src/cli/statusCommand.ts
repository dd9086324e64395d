// `understudy status`: one row per node of a cluster, from the member registry in etcd and
// each member's own `/status`.
import type { Command } from 'commander';
import { UnreachableError } from './unreachable.ts';
import type { Etcd3 } from 'etcd3';
import { ConfigError } from '../config/settings.ts';
import {
  addClusterOptions,
  durationFlag,
  openClusterEtcd,
  loadClusterAccess,
} from './clusterOptions.ts';
import {
  noPrimaryReason,
  readClusterStatus,
  renderStatusTable,
  statusRowJson,
  type ClusterStatus,
} from '../tools/clusterStatus.ts';
import {
  groupsJson,
  groupsNoPrimaryReason,
  readGroupsStatus,
  renderGroupTable,
  type GroupStatus,
} from '../tools/groupStatus.ts';
import { clusterGroupCount, GROUP_OPTION_HELP, groupFlag, groupTarget } from './groupOption.ts';

/** Exit codes of `understudy status`. */
export const STATUS_EXIT = {
  /** Rows printed and a node answers as primary. */
  ok: 0,
  /** etcd could not be read. */
  failed: 1,
  /** Bad flags, environment or config. */
  usage: 2,
  /** Rows printed, but no node answers as primary (none is, or the primary is unreachable). */
  noPrimary: 3,
} as const;

const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/**
 * Prints the group x node table of a cluster of several groups (once, or with `watch` every
 * `intervalMs` until Ctrl-C); resolves with the exit code when not watching.
 */
async function showGroups(
  access: { readonly cluster: string; readonly etcd: readonly string[] },
  read: () => Promise<GroupStatus[]>,
  json: boolean,
  watch: boolean,
  options: { readonly intervalMs: number; stop(): void },
): Promise<number> {
  const print = (groups: readonly GroupStatus[]): void => {
    process.stdout.write(
      json
        ? `${JSON.stringify(groupsJson(groups), null, watch ? 0 : 2)}\n`
        : renderGroupTable(access.cluster, groups),
    );
  };
  if (watch) {
    const stop = (): void => {
      options.stop();
      process.exit(STATUS_EXIT.ok);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    for (;;) {
      const groups = await read().catch((err: unknown) => err);
      if (!json) process.stdout.write(CLEAR_SCREEN);
      if (groups instanceof Error) process.stdout.write(`status: ${groups.message}\n`);
      else print(groups as GroupStatus[]);
      if (!json) process.stdout.write(`\nrefreshed ${new Date().toISOString()}; Ctrl-C to quit\n`);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
  }
  const groups = await read().catch((err: unknown) => {
    throw new UnreachableError('etcd', access.etcd, err);
  });
  print(groups);
  const reason = groupsNoPrimaryReason(groups);
  if (reason !== undefined) process.stderr.write(`understudy status: ${reason}\n`);
  return reason === undefined ? STATUS_EXIT.ok : STATUS_EXIT.noPrimary;
}

/**
 * `understudy status`: prints one row per node (see {@link StatusRow}); `--json` prints a JSON
 * array; `--watch` redraws every `--interval` until Ctrl-C (with `--json`: one array per line).
 * Exit codes: {@link STATUS_EXIT}.
 */
export function registerStatusCommand(program: Command): void {
  const command = program
    .command('status')
    .description(
      'show every node: id, state, epoch, applied seq, lag (entries and ms), last verification, address',
    );
  addClusterOptions(command)
    .option('--json', 'print a JSON array of rows')
    .option('--group <n>', `${GROUP_OPTION_HELP}: its node table (default: the group x node table)`)
    .option('--watch', 'refresh in place until Ctrl-C')
    .option('--interval <duration>', 'refresh interval with --watch', '1s')
    .option('--http-timeout <duration>', "bound on each node's /status request", '1s')
    .option(
      '--expect <ids>',
      'nodes that should be members (comma-separated): one without a member record is shown as missing',
    )
    .addHelpText(
      'after',
      [
        '',
        'LAG is the primary applied seq minus the node applied seq; LAG_MS estimates it in time:',
        'LAG / the primary apply rate (its /metrics understudy_apply_rate); "-" when unknown.',
        'LAST_VERIFICATION is the last verification round the node reports ("-" when none).',
        'STATE missing: a node named by --expect (or seen earlier by --watch) that has no member',
        'record now (it stopped, or was killed and its lease expired).',
        '',
        'A cluster of several groups (--groups) is shown as a group x node table: each cell is the',
        "node's member of that group, STATE[*] eEPOCH@APPLIED (* holds the leader key); --group N",
        'shows the table above for group N.',
        '',
        'Exit codes: 0 ok; 1 etcd unreachable or failed; 2 usage; 3 no node answers as primary',
        '(none is, or the one holding the leader key does not answer; of some group, with groups).',
        '',
        'Examples:',
        '  understudy status --cluster main --etcd http://10.0.0.1:2379',
        '  UNDERSTUDY_CLUSTER=main understudy status --watch --interval 2s',
        '  understudy status --cluster main --json | jq \'.[] | select(.state == "primary")\'',
      ].join('\n'),
    )
    .action(async (flags: Record<string, unknown>) => {
      let client: Etcd3 | undefined;
      try {
        const access = loadClusterAccess(flags);
        const intervalMs = durationFlag(flags['interval'], '--interval', 1000);
        const httpTimeoutMs = durationFlag(flags['httpTimeout'], '--http-timeout', 1000);
        const group = groupFlag(flags['group']);
        client = await openClusterEtcd(access);
        const json = flags['json'] === true;
        const groups = await clusterGroupCount(client, access.cluster).catch((err: unknown) => {
          throw new UnreachableError('etcd', access.etcd, err);
        });
        if (groups > 1 && group === undefined) {
          const etcdClient = client;
          const read = (): Promise<GroupStatus[]> =>
            readGroupsStatus(etcdClient, access.cluster, groups, httpTimeoutMs);
          process.exitCode = await showGroups(access, read, json, flags['watch'] === true, {
            intervalMs,
            stop: () => etcdClient.close(),
          });
          return;
        }
        const target = groupTarget(access.cluster, group, groups);
        const groupQuery = groups > 1 ? group : undefined;
        const { withMissing, missingReason } = await import('./statusMissing.ts');
        /** --expect, and with --watch every node seen so far. */
        const expected = new Set(
          typeof flags['expect'] === 'string'
            ? flags['expect']
                .split(',')
                .map((id) => id.trim())
                .filter((id) => id !== '')
            : [],
        );
        const complete = (status: ClusterStatus): ClusterStatus => {
          const shown = withMissing(status, expected);
          for (const row of status.rows) expected.add(row.id);
          return shown;
        };
        const show = (status: ClusterStatus): void => {
          process.stdout.write(
            json
              ? `${JSON.stringify(status.rows.map(statusRowJson), null, flags['watch'] === true ? 0 : 2)}\n`
              : renderStatusTable(status),
          );
        };
        if (flags['watch'] === true) {
          const stop = (): void => {
            client?.close();
            process.exit(STATUS_EXIT.ok);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          for (;;) {
            const status = await readClusterStatus(client, target, httpTimeoutMs, groupQuery).catch(
              (err: unknown) => err,
            );
            if (!json) process.stdout.write(CLEAR_SCREEN);
            if (status instanceof Error) {
              process.stdout.write(`status: ${status.message}\n`);
            } else {
              const shown = complete(status as ClusterStatus);
              show(shown);
              const missing = json ? undefined : missingReason(shown);
              if (missing !== undefined) process.stdout.write(`${missing}\n`);
            }
            if (!json)
              process.stdout.write(`\nrefreshed ${new Date().toISOString()}; Ctrl-C to quit\n`);
            await new Promise((resolve) => setTimeout(resolve, intervalMs));
          }
        }
        const status = await readClusterStatus(client, target, httpTimeoutMs, groupQuery).catch(
          (err: unknown) => {
            throw new UnreachableError('etcd', access.etcd, err);
          },
        );
        const shown = complete(status);
        show(shown);
        const missing = missingReason(shown);
        if (missing !== undefined) process.stderr.write(`understudy status: ${missing}\n`);
        const reason = noPrimaryReason(status);
        if (reason !== undefined) process.stderr.write(`understudy status: ${reason}\n`);
        process.exitCode = reason === undefined ? STATUS_EXIT.ok : STATUS_EXIT.noPrimary;
      } catch (err) {
        process.stderr.write(
          `understudy status: ${err instanceof Error ? err.message : String(err)}\n`,
        );
        process.exitCode = err instanceof ConfigError ? STATUS_EXIT.usage : STATUS_EXIT.failed;
      } finally {
        client?.close();
      }
    });
}
