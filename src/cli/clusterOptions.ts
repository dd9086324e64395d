// How the operator commands (`status`, `switchover`) reach a cluster: its name and etcd, from
// flags, the environment and a config file, like `understudy node`.
import type { Command } from 'commander';
import type { Etcd3 } from 'etcd3';
import {
  clusterAccessSettings,
  loadCommandSettings,
  type ClusterAccess,
} from '../config/config.ts';
import { ConfigError, SettingValueError } from '../config/settings.ts';
import { parseDuration } from '../config/settingTypes.ts';
import { addSettingOptions } from './settingOptions.ts';

export type { ClusterAccess } from '../config/config.ts';

/** Adds `--config`, `--cluster`, `--etcd` and the etcd credential flags to `command`. */
export function addClusterOptions(command: Command): Command {
  return addSettingOptions(command, clusterAccessSettings);
}

/**
 * The cluster and etcd settings from flags, the environment and the config file (other
 * `node` settings in it are ignored). Throws {@link ConfigError} naming every bad setting.
 */
export function loadClusterAccess(
  flags: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): ClusterAccess {
  return loadCommandSettings(clusterAccessSettings, flags, env);
}

/**
 * An etcd client for `access` (credentials read from their files). The etcd and credential
 * modules load here, not when the command is defined, so `--help` stays fast.
 */
export async function openClusterEtcd(access: ClusterAccess): Promise<Etcd3> {
  const [{ openEtcd }, { etcdConnectionOptions }] = await Promise.all([
    import('../adapters/etcd/etcdClient.ts'),
    import('../config/credentials.ts'),
  ]);
  return openEtcd(etcdConnectionOptions(access, access.etcd)).client;
}

/**
 * A duration flag of a command (`500ms`, `5s`, `2m`: the unit is required), `fallback` when
 * not given. Throws {@link ConfigError} naming the flag.
 */
export function durationFlag(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  try {
    const ms = parseDuration(value);
    if (!(ms > 0)) throw new SettingValueError(`${JSON.stringify(value)} must be above 0`);
    return ms;
  } catch (err) {
    if (!(err instanceof SettingValueError)) throw err;
    throw new ConfigError([`${flag}: ${err.message}`]);
  }
}
