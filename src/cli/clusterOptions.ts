// How the operator commands (`status`, `switchover`) reach a cluster: its name and etcd, from
// flags, the environment and a config file, like `understudy node`.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { envName, parseDuration } from '../runtime/config.ts';
import { etcdConnectionOptions, securityConfigSchema } from '../runtime/credentials.ts';
import type { EtcdSecureOptions } from '../runtime/credentials.ts';

const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean));

/** The settings an operator command reads (the same names and env vars as `understudy node`). */
export const clusterAccessSchema = z.object({
  cluster: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _ only'),
  etcd: list.default(['http://127.0.0.1:2379']),
  etcdUser: securityConfigSchema.shape.etcdUser,
  etcdPassword: securityConfigSchema.shape.etcdPassword,
  etcdPasswordFile: securityConfigSchema.shape.etcdPasswordFile,
  etcdTlsCa: securityConfigSchema.shape.etcdTlsCa,
  etcdTlsCert: securityConfigSchema.shape.etcdTlsCert,
  etcdTlsKey: securityConfigSchema.shape.etcdTlsKey,
});

export type ClusterAccess = z.output<typeof clusterAccessSchema>;

/** Bad flags, environment or config file: the command exits with the usage code (2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Adds `--config`, `--cluster`, `--etcd` and the etcd credential flags to `command`. */
export function addClusterOptions(command: Command): Command {
  return command
    .option('--config <file>', 'JSON config file, as for `node` (env UNDERSTUDY_CONFIG)')
    .option('--cluster <name>', 'cluster name (env UNDERSTUDY_CLUSTER)')
    .option('--etcd <urls>', 'etcd endpoints, comma-separated (env UNDERSTUDY_ETCD)')
    .option(
      '--etcd-user <user>',
      'etcd user; the password comes from UNDERSTUDY_ETCD_PASSWORD(_FILE)',
    )
    .option('--etcd-password-file <file>', 'file holding the etcd password')
    .option('--etcd-tls-ca <file>', 'CA certificate for etcd TLS')
    .option('--etcd-tls-cert <file>', 'client certificate for etcd TLS')
    .option('--etcd-tls-key <file>', 'client key for etcd TLS');
}

/**
 * Merges a config file (JSON; other `node` settings in it are ignored), the environment and
 * flags, in rising precedence. Throws {@link UsageError} naming every bad setting.
 */
export function loadClusterAccess(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): ClusterAccess {
  const merged: Record<string, unknown> = {};
  const file = flags['config'] ?? env['UNDERSTUDY_CONFIG'];
  if (typeof file === 'string' && file !== '') {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      for (const key of Object.keys(clusterAccessSchema.shape)) {
        if (parsed[key] !== undefined) merged[key] = parsed[key];
      }
    } catch (err) {
      throw new UsageError(`cannot read config file ${file}: ${String(err)}`, [], { cause: err });
    }
  }
  for (const key of Object.keys(clusterAccessSchema.shape)) {
    const value = env[envName(key)];
    if (value !== undefined && value !== '') merged[key] = value;
  }
  for (const key of Object.keys(clusterAccessSchema.shape)) {
    if (flags[key] !== undefined) merged[key] = flags[key];
  }
  const parsed = clusterAccessSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new UsageError(`bad configuration: ${problems.join('; ')}`, problems);
  }
  return parsed.data;
}

/** The etcd connection options for `access` (credentials read from their files). */
export function etcdOptionsOf(access: ClusterAccess): EtcdSecureOptions {
  return etcdConnectionOptions(access, access.etcd);
}

/** A duration flag (`500ms`, `5s`, `2m`, or a number of ms); throws {@link UsageError}. */
export function durationFlag(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  try {
    if (typeof value !== 'number' && typeof value !== 'string')
      throw new Error(`${field}: not a duration`);
    const ms = parseDuration(value, field);
    if (!(ms > 0)) throw new Error(`${field} must be > 0`);
    return ms;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err), [], { cause: err });
  }
}
