/**
 * Every setting of `understudy node` (settings.ts says how flags, the environment and the
 * config file give them), and the loaders the commands use.
 */
import {
  ETCD_SECURITY_KEYS,
  NATS_SECURITY_KEYS,
  securitySettings,
  validateSecurityConfig,
} from './securitySettings.ts';
import {
  ConfigError,
  labelProblem,
  loadSettings,
  optional,
  settingLabel,
  required,
  withDefault,
  type SettingsOf,
  type SettingTable,
} from './settings.ts';
import {
  duration,
  filePath,
  fraction,
  integer,
  list,
  matching,
  oneOf,
  oneOfNumbers,
  showDuration,
  url,
} from './settingTypes.ts';
import { readConfigFile } from './configFile.ts';

import { OPLOG_DUPLICATE_WINDOW_MS } from '../ports/appendWindow.ts';
import { MAX_GROUPS } from '../domain/model/groups.ts';

export { ConfigError, envName } from './settings.ts';

/** The shortest lease TTL (ms): etcd grants leases in whole seconds. */
export const MIN_LEASE_TTL_MS = 1000;

const clusterName = matching(
  /^[A-Za-z0-9_-]{1,64}$/,
  'a cluster name (1-64 letters, digits, - and _)',
  '<name>',
);

/** Every setting of `understudy node`, in the order `--help` lists them. */
export const nodeSettings = {
  id: required(
    matching(
      /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/,
      'a node id (1-128 letters, digits, ., - and _)',
      '<id>',
    ),
    'node id, unique in the cluster',
  ),
  cluster: required(clusterName, 'cluster name: the NATS subjects, stream and etcd keys'),
  groups: withDefault(
    integer({ min: 1 }),
    1,
    'groups the keyspace is split into, each its own primary (1-1024); fixed when the cluster is first created, a node started with another count refuses to start',
  ),
  groupThreads: withDefault(
    oneOf(['main', 'worker']),
    'main',
    "where a process runs its groups' members: main (all in the process's one thread) or worker (each in a worker thread of its own: its own heap, GC and event loop, so groups use every core and one group's GC cannot stall another's lease); no effect with one group",
  ),
  nats: withDefault(
    list('<urls>', url(['nats:', 'tls:'])),
    ['nats://127.0.0.1:4222'],
    'NATS servers, comma-separated: give every server of the cluster',
  ),
  etcd: withDefault(
    list('<urls>', url(['http:', 'https:'])),
    ['http://127.0.0.1:2379'],
    'etcd endpoints, comma-separated',
  ),
  leaseTtl: withDefault(
    duration({ min: MIN_LEASE_TTL_MS, step: 1000 }),
    5000,
    'leader lease TTL, whole seconds, at least 1s: a dead primary is replaced after about this long; NATS is pinged every TTL/4, so a hung NATS server is left within 3/4 of it',
  ),
  http: withDefault(
    matching(/^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]*):\d{1,5}$/, 'an address host:port', '<host:port>'),
    '127.0.0.1:0',
    'address of the HTTP server (/healthz, /readyz, /metrics, /status); port 0 picks one',
  ),
  advertise: optional(
    url(['http:', 'https:']),
    'URL other nodes and `understudy status` reach the HTTP server at (default: the address it listens on)',
  ),
  inspect: optional(
    url(['ws:', 'wss:']),
    "send the node's actors to an XState inspector at this WebSocket URL",
  ),
  record: optional(
    filePath,
    "flight recorder: write the machine's inspection events to this file as NDJSON",
  ),
  recordMaxBytes: withDefault(
    integer({ min: 1 }),
    16 * 1024 * 1024,
    'largest size of one recording file in bytes; FILE rotates to FILE.1 (two files at most)',
  ),
  oplog: withDefault(
    oneOf(['nats', 'etcd']),
    'nats',
    'OpLog backend: nats (a JetStream stream) or etcd (transactions, the baseline)',
  ),
  streamReplicas: withDefault(oneOfNumbers([1, 3]), 1, 'OpLog stream replicas, 1 or 3'),
  streamMaxAge: withDefault(
    duration({ min: 0 }),
    0,
    'OpLog age limit, a guard only (checkpoints trim the stream): 0 for none, else at least 3 checkpoint intervals and at least 2m (the duplicate window)',
  ),
  streamMaxBytes: withDefault(
    integer({ min: -1 }),
    -1,
    'OpLog size limit, a guard only: -1 (unlimited) is the one value accepted',
  ),
  checkpointIntervalEntries: withDefault(
    integer({ min: 1 }),
    100_000,
    'a checkpoint is written after this many entries since the newest one',
  ),
  checkpointInterval: withDefault(
    duration({ min: 1000 }),
    10 * 60_000,
    '...or once the newest checkpoint is this old (and entries came since)',
  ),
  checkpointKeep: withDefault(
    integer({ min: 1 }),
    3,
    'checkpoints kept; the stream is trimmed below the oldest of them',
  ),
  maxLagForPromotion: withDefault(
    integer({ min: 0 }),
    1000,
    'a standby further behind (entries) does not campaign',
  ),
  campaignBaseDelay: withDefault(
    duration({ min: 0 }),
    50,
    'least wait after the leader key is gone before campaigning',
  ),
  campaignMaxDelay: withDefault(
    duration({ min: 0 }),
    1000,
    'most wait before campaigning (the further behind, the longer)',
  ),
  handoverTimeout: withDefault(
    duration({ min: 100 }),
    3000,
    'how long a stopping primary waits for a standby to catch up (0.5 s once no other node is registered)',
  ),
  evictionHighWater: withDefault(
    fraction,
    0.9,
    'used fraction of the segments at which the primary evicts',
  ),
  evictionLowWater: withDefault(fraction, 0.8, 'used fraction eviction brings it down to'),
  verifyInterval: withDefault(
    duration({ min: 100 }),
    30_000,
    'how often a standby verifies a sample of its state',
  ),
  verifyFraction: withDefault(fraction, 0.1, 'fraction of the 1024 shards each round samples'),
  maxSyncGap: withDefault(
    integer({ min: 0 }),
    1000,
    'a standby further behind (entries) is told to full-sync instead; one still folding catches up from the log',
  ),
  maxMismatches: withDefault(
    integer({ min: 0 }),
    100,
    'more mismatches in one round: full sync instead of repair',
  ),
  logLevel: withDefault(
    oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], '<level>'),
    'info',
    'log level: trace, debug, info, warn, error, fatal or silent (JSON lines on stdout)',
  ),
  ...securitySettings,
} as const satisfies SettingTable;

export type NodeConfig = SettingsOf<typeof nodeSettings>;

/** The settings named `keys` of `table`. */
export function pickSettings<S extends SettingTable, K extends keyof S>(
  table: S,
  keys: readonly K[],
): Pick<S, K> {
  return Object.fromEntries(keys.map((k) => [k, table[k]])) as Pick<S, K>;
}

/** What the operator commands `status` and `switchover` read: the cluster and etcd. */
export const clusterAccessSettings = pickSettings(nodeSettings, [
  'cluster',
  'etcd',
  ...ETCD_SECURITY_KEYS,
]);
export type ClusterAccess = SettingsOf<typeof clusterAccessSettings>;

/** What `export` and `replay` read the live OpLog with: the cluster and NATS. */
export const natsSourceSettings = pickSettings(nodeSettings, [
  'cluster',
  'nats',
  ...NATS_SECURITY_KEYS,
  'oplogKey',
  'oplogKeyFile',
]);
export type NatsSource = SettingsOf<typeof natsSourceSettings>;

function crossChecks(config: Partial<NodeConfig>): string[] {
  const problems = validateSecurityConfig(config);
  if (config.groups !== undefined && config.groups > MAX_GROUPS) {
    problems.push(
      `${settingLabel('groups', nodeSettings.groups)}: ${config.groups} is above the maximum, ` +
        `${MAX_GROUPS} (every group owns at least one of the ${MAX_GROUPS} shards)`,
    );
  }
  const { evictionHighWater: high, evictionLowWater: low } = config;
  if (high !== undefined && low !== undefined && !(low < high)) {
    problems.push(`evictionLowWater (${low}) must be below evictionHighWater (${high})`);
  }
  const { streamMaxAge, streamMaxBytes, checkpointInterval } = config;
  if (
    streamMaxAge !== undefined &&
    streamMaxBytes !== undefined &&
    checkpointInterval !== undefined
  ) {
    problems.push(...retentionProblems({ streamMaxAge, streamMaxBytes, checkpointInterval }));
  }
  return problems;
}

/**
 * Retention settings that could drop acknowledged entries no checkpoint covers yet, each as a
 * sentence saying what to set instead. The stream is trimmed below verified checkpoints only;
 * an age limit is allowed as a guard when it is at least 3 checkpoint intervals (the entries
 * after the newest checkpoint are younger than one interval while checkpoints are written) and
 * at least the stream's duplicate window (NATS JetStream refuses a shorter age, and the window
 * cannot shrink to fit it: it must cover an append's retries, see streamLimits.ts); a size limit
 * never is (a burst of writes between two checkpoints can fill any size).
 */
export function retentionProblems(
  config: Pick<NodeConfig, 'streamMaxAge' | 'streamMaxBytes' | 'checkpointInterval'>,
): string[] {
  const problems: string[] = [];
  const least = 3 * config.checkpointInterval;
  if (config.streamMaxAge > 0 && config.streamMaxAge < least) {
    problems.push(
      `streamMaxAge: ${showDuration(config.streamMaxAge)} could trim entries that no checkpoint ` +
        `covers yet; set 0 (no age limit: checkpoints trim the stream) or at least ` +
        `3 × checkpointInterval (${showDuration(least)})`,
    );
  }
  if (config.streamMaxAge > 0 && config.streamMaxAge < OPLOG_DUPLICATE_WINDOW_MS) {
    problems.push(
      `streamMaxAge: ${showDuration(config.streamMaxAge)} is shorter than the OpLog stream's ` +
        `duplicate window (${showDuration(OPLOG_DUPLICATE_WINDOW_MS)}), which NATS JetStream ` +
        `refuses; set 0 (no age limit: checkpoints trim the stream) or at least ` +
        `${showDuration(OPLOG_DUPLICATE_WINDOW_MS)}`,
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

/**
 * The settings of `table` from a command's flags (commander's camelCase options, `config` for
 * `--config`), the environment and the config file (`--config` or `UNDERSTUDY_CONFIG`; any
 * key of `understudy node` is accepted there, so one file serves every command). Throws
 * {@link ConfigError} naming every bad, missing or contradicting setting by flag and variable.
 */
export function loadCommandSettings<S extends SettingTable>(
  table: S,
  flags: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): SettingsOf<S> {
  const path = flags['config'] ?? env['UNDERSTUDY_CONFIG'];
  const file =
    typeof path === 'string' && path !== ''
      ? readConfigFile(path, Object.keys(nodeSettings))
      : undefined;
  const values = loadSettings(table, { flags, env, ...(file === undefined ? {} : { file }) });
  const problems = crossChecks(values as Partial<NodeConfig>).map((p) =>
    labelProblem(p, nodeSettings),
  );
  if (problems.length > 0) throw new ConfigError(problems);
  return values;
}

/** The settings of `understudy node`; see {@link loadCommandSettings}. */
export function loadNodeConfig(
  flags: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): NodeConfig {
  return loadCommandSettings(nodeSettings, flags, env);
}
