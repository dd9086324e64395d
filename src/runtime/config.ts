import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { securityConfigSchema, validateSecurityConfig } from './credentials.ts';

/** A duration: a number of milliseconds, or a string with a unit (`250ms`, `5s`, `2m`). */
export function parseDuration(value: string | number, field: string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (match === null) throw new Error(`${field}: '${value}' is not a duration (e.g. 500ms, 5s)`);
  const amount = Number(match[1]);
  const unit = match[2] ?? 'ms';
  return Math.round(amount * (unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1));
}

const duration = (field: string) =>
  z.union([z.number(), z.string()]).transform((v) => parseDuration(v, field));
const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean));

/** Every setting of `understudy node`, with its default. */
export const nodeConfigSchema = z.object({
  id: z.string().min(1).max(128),
  cluster: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, - and _ only'),
  nats: list.default(['nats://127.0.0.1:4222']),
  etcd: list.default(['http://127.0.0.1:2379']),
  leaseTtl: duration('leaseTtl').default(5000),
  /** Address of the HTTP status server (`host:port`; port 0 picks a free one). */
  http: z.string().default('127.0.0.1:0'),
  /** An XState inspector's WebSocket URL (`ws://host:port`): the node's actors are sent there. */
  inspect: z.string().url().optional(),
  /** Where the OpLog lives: a NATS JetStream stream (default) or etcd transactions (the baseline). */
  oplog: z.enum(['nats', 'etcd']).default('nats'),
  streamReplicas: z.coerce
    .number()
    .pipe(z.union([z.literal(1), z.literal(3)]))
    .default(1),
  /**
   * A guard, not the retention: checkpoints trim the stream. 0 (default) sets no age limit;
   * any other value must be at least 3 × `checkpointInterval` (see {@link retentionProblems}).
   */
  streamMaxAge: duration('streamMaxAge').default(0),
  /** -1 (default): no size limit. Any limit is refused (see {@link retentionProblems}). */
  streamMaxBytes: z.coerce.number().int().default(-1),
  /** A checkpoint is due after this many entries since the newest one. */
  checkpointIntervalEntries: z.coerce.number().int().positive().default(100_000),
  /** ...or once the newest one is this old (and entries came since). */
  checkpointInterval: duration('checkpointInterval').default(10 * 60_000),
  /** Checkpoints kept; the stream is trimmed below the oldest of them. */
  checkpointKeep: z.coerce.number().int().min(1).max(100).default(3),
  maxLagForPromotion: z.coerce.number().int().nonnegative().default(1000),
  campaignBaseDelay: duration('campaignBaseDelay').default(50),
  campaignMaxDelay: duration('campaignMaxDelay').default(1000),
  handoverTimeout: duration('handoverTimeout').default(3000),
  evictionHighWater: z.coerce.number().gt(0).lte(1).default(0.9),
  evictionLowWater: z.coerce.number().gt(0).lte(1).default(0.8),
  /** How often a standby runs a verification round. */
  verifyInterval: duration('verifyInterval').default(30_000),
  /** Fraction of the 1024 shards each verification round samples. */
  verifyFraction: z.coerce.number().gt(0).lte(1).default(0.1),
  /** A standby further behind than this (entries) is told to full-sync instead of verified. */
  maxSyncGap: z.coerce.number().int().nonnegative().default(1000),
  /** More mismatches than this in one verification round: full sync instead of repair. */
  maxMismatches: z.coerce.number().int().nonnegative().default(100),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  ...securityConfigSchema.shape,
});

export type NodeConfig = z.output<typeof nodeConfigSchema>;

/** The environment variable for each setting: `UNDERSTUDY_` + the name in SCREAMING_SNAKE. */
export function envName(key: string): string {
  return `UNDERSTUDY_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/**
 * Merges a config file (JSON), the environment and flags, in rising precedence, and
 * validates the result. Throws an error naming every bad setting.
 */
export function loadNodeConfig(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): NodeConfig {
  const merged: Record<string, unknown> = {};
  const file = flags['config'] ?? env['UNDERSTUDY_CONFIG'];
  if (typeof file === 'string' && file !== '') {
    Object.assign(merged, JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>);
  }
  for (const key of Object.keys(nodeConfigSchema.shape)) {
    const value = env[envName(key)];
    if (value !== undefined && value !== '') merged[key] = value;
  }
  for (const [key, value] of Object.entries(flags)) {
    if (key !== 'config' && value !== undefined) merged[key] = value;
  }
  const parsed = nodeConfigSchema.safeParse(merged);
  const problems = parsed.success
    ? [...validateSecurityConfig(parsed.data), ...retentionProblems(parsed.data)]
    : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  if (!parsed.success || problems.length > 0) {
    throw new Error(`bad configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * Retention settings that could drop acknowledged entries no checkpoint covers yet, each as a
 * sentence saying what to set instead. The stream is trimmed below verified checkpoints only;
 * an age limit is allowed as a guard when it is at least 3 checkpoint intervals (the entries
 * after the newest checkpoint are younger than one interval while checkpoints are written); a
 * size limit never is (a burst of writes between two checkpoints can fill any size).
 */
export function retentionProblems(
  config: Pick<
    NodeConfig,
    'streamMaxAge' | 'streamMaxBytes' | 'checkpointInterval' | 'checkpointIntervalEntries'
  >,
): string[] {
  const problems: string[] = [];
  const least = 3 * config.checkpointInterval;
  if (config.streamMaxAge > 0 && config.streamMaxAge < least) {
    problems.push(
      `streamMaxAge: ${config.streamMaxAge} ms could trim entries that no checkpoint covers yet; ` +
        `set 0 (no age limit: checkpoints trim the stream) or at least 3 × checkpointInterval ` +
        `(${least} ms)`,
    );
  }
  if (config.streamMaxBytes > 0) {
    problems.push(
      `streamMaxBytes: a size limit (${config.streamMaxBytes} bytes) could trim entries that no ` +
        `checkpoint covers yet (writes between two checkpoints can fill any size); set -1: ` +
        `checkpoints trim the stream`,
    );
  }
  return problems;
}
