// The settings of the commands: precedence, value types, config-file checks, and messages that
// name the flag and the environment variable.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNodeConfig, MIN_LEASE_TTL_MS, nodeSettings } from '../../src/config/config.ts';
import { ConfigError, envName, flagName, SettingValueError } from '../../src/config/settings.ts';
import { parseDuration } from '../../src/config/settingTypes.ts';
import { readConfigFile } from '../../src/config/configFile.ts';

const dir = mkdtempSync(join(tmpdir(), 'understudy-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const base = { id: 'n1', cluster: 'main' };

/** The problems of a config that must not load. */
function problemsOf(load: () => unknown): readonly string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('names', () => {
  it('derives the flag and the variable from the setting name', () => {
    expect(flagName('leaseTtl')).toBe('--lease-ttl');
    expect(envName('leaseTtl')).toBe('UNDERSTUDY_LEASE_TTL');
    expect(flagName('natsTlsCa')).toBe('--nats-tls-ca');
    expect(envName('natsTlsCa')).toBe('UNDERSTUDY_NATS_TLS_CA');
  });
});

describe('durations', () => {
  it('take a unit', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120_000);
  });

  it('refuse a bare number, saying which units there are', () => {
    expect(() => parseDuration('5')).toThrow(SettingValueError);
    expect(() => parseDuration('5')).toThrow('"5" has no unit: write 5s, or 5ms for milliseconds');
    expect(() => parseDuration(5000)).toThrow('5000 has no unit');
    expect(() => parseDuration('soon')).toThrow(
      '"soon" is not a duration (e.g. 500ms, 5s, 2m, 24h)',
    );
  });
});

describe('loadNodeConfig', () => {
  it('has a default for every setting but the id and the cluster', () => {
    const config = loadNodeConfig(base, {});
    expect(config).toMatchObject({
      id: 'n1',
      cluster: 'main',
      nats: ['nats://127.0.0.1:4222'],
      etcd: ['http://127.0.0.1:2379'],
      leaseTtl: 5000,
      http: '127.0.0.1:0',
      campaignMaxDelay: 1000,
      evictionHighWater: 0.9,
      evictionLowWater: 0.8,
      verifyInterval: 30_000,
    });
    expect(config.advertise).toBeUndefined();
  });

  it('takes flags over the environment over the file', () => {
    const file = configFile(
      'p.json',
      '{"leaseTtl": "3s", "verifyInterval": "10s", "maxSyncGap": 7}',
    );
    const env = {
      UNDERSTUDY_CONFIG: file,
      UNDERSTUDY_LEASE_TTL: '4s',
      UNDERSTUDY_MAX_SYNC_GAP: '8',
    };
    const config = loadNodeConfig({ ...base, leaseTtl: '6s' }, env);
    expect(config.leaseTtl).toBe(6000);
    expect(config.maxSyncGap).toBe(8);
    expect(config.verifyInterval).toBe(10_000);
  });

  it('names a missing id by flag, variable and file key', () => {
    expect(problemsOf(() => loadNodeConfig({ cluster: 'c' }, {}))).toEqual([
      '--id (UNDERSTUDY_ID) is required (or "id" in a config file)',
    ]);
  });

  it('names a bad value by flag and variable, and where it came from', () => {
    expect(problemsOf(() => loadNodeConfig({ cluster: 'a b', id: 'n1' }, {}))).toEqual([
      '--cluster (UNDERSTUDY_CLUSTER): "a b" is not a cluster name (1-64 letters, digits, - and _) (from the flag --cluster)',
    ]);
    expect(problemsOf(() => loadNodeConfig(base, { UNDERSTUDY_NATS: 'http://x:4222' }))[0]).toMatch(
      /^--nats \(UNDERSTUDY_NATS\): "http:\/\/x:4222" is not a URL like nats:\/\/host:port .*\(from UNDERSTUDY_NATS\)$/,
    );
  });

  it('refuses a lease TTL without a unit, below the minimum or not in whole seconds', () => {
    expect(problemsOf(() => loadNodeConfig({ ...base, leaseTtl: '5' }, {}))).toEqual([
      '--lease-ttl (UNDERSTUDY_LEASE_TTL): "5" has no unit: write 5s, or 5ms for milliseconds (units: ms, s, m, h) (from the flag --lease-ttl)',
    ]);
    expect(MIN_LEASE_TTL_MS).toBe(1000);
    expect(problemsOf(() => loadNodeConfig({ ...base, leaseTtl: '500ms' }, {}))[0]).toContain(
      '"500ms" is below the minimum, 1s',
    );
    expect(problemsOf(() => loadNodeConfig({ ...base, leaseTtl: '1500ms' }, {}))[0]).toContain(
      '"1500ms" is not a whole number of 1s',
    );
    expect(loadNodeConfig({ ...base, leaseTtl: '2s' }, {}).leaseTtl).toBe(2000);
  });

  it('lists every problem at once', () => {
    const problems = problemsOf(() =>
      loadNodeConfig({ leaseTtl: '5', streamReplicas: '2', verifyFraction: '1.5' }, {}),
    );
    expect(problems.map((p) => p.split(' ')[0])).toEqual([
      '--id',
      '--cluster',
      '--lease-ttl',
      '--stream-replicas',
      '--verify-fraction',
    ]);
  });

  it('checks settings against each other, naming both', () => {
    expect(
      problemsOf(() =>
        loadNodeConfig({ ...base, evictionHighWater: '0.5', evictionLowWater: '0.6' }, {}),
      ),
    ).toEqual([
      '--eviction-low-water (UNDERSTUDY_EVICTION_LOW_WATER) (0.6) must be below --eviction-high-water (UNDERSTUDY_EVICTION_HIGH_WATER) (0.5)',
    ]);
  });

  it('never shows a secret, and never takes one from a flag', () => {
    const problems = problemsOf(() =>
      loadNodeConfig(base, { UNDERSTUDY_NATS_PASSWORD: 'hunter2' }),
    );
    expect(problems).toEqual([
      'UNDERSTUDY_NATS_PASSWORD ("natsPassword" in the config file) needs --nats-user (UNDERSTUDY_NATS_USER)',
    ]);
    expect(loadNodeConfig({ ...base, natsPassword: 'from-flag' }, {}).natsPassword).toBeUndefined();
    const file = configFile('secret.json', '{"natsUser": "u", "natsPassword": ""}');
    const bad = problemsOf(() => loadNodeConfig({ ...base, config: file }, {}));
    expect(bad).toEqual([
      `UNDERSTUDY_NATS_PASSWORD ("natsPassword" in the config file): the value from "natsPassword" in ${file} is not valid`,
    ]);
  });
});

describe('the config file', () => {
  it('refuses an unknown key, naming it and the closest setting', () => {
    const file = configFile(
      'typo.json',
      '{"id": "n1", "cluster": "c", "leaseTTL": "5s", "colour": 1}',
    );
    expect(problemsOf(() => loadNodeConfig({ config: file }, {}))).toEqual([
      `config file ${file}: unknown setting "leaseTTL" (did you mean "leaseTtl"?)`,
      `config file ${file}: unknown setting "colour"`,
    ]);
  });

  it('names the file, the line and the column of a syntax error', () => {
    const cases: Array<[string, string]> = [
      [
        '{\n  "id": "n1",\n  "cluster": "c",\n}\n',
        'line 4 column 1: expected a double-quoted key, found "}"',
      ],
      [
        '{"id": "n1" "cluster": "c"}',
        `line 1 column 13: expected ',' or '}', found ${JSON.stringify('"')}`,
      ],
      ['{"id": "n1",\n "leaseTtl": 5s}', `line 2 column 15: expected ',' or '}', found "s"`],
      ['{"id": "n1"', 'line 1 column 12: unexpected end of the file'],
      ['{"id": "n1"} x', 'line 1 column 14: unexpected text after the JSON value'],
    ];
    for (const [content, where] of cases) {
      const file = configFile('bad.json', content);
      expect(problemsOf(() => readConfigFile(file, Object.keys(nodeSettings)))).toEqual([
        `config file ${file}: not valid JSON at ${where}`,
      ]);
    }
  });

  it('must be an object and must exist', () => {
    const file = configFile('array.json', '["id"]');
    expect(problemsOf(() => readConfigFile(file, []))).toEqual([
      `config file ${file}: must be a JSON object of settings`,
    ]);
    expect(problemsOf(() => readConfigFile(join(dir, 'none.json'), []))).toEqual([
      `config file ${join(dir, 'none.json')}: cannot be read (ENOENT)`,
    ]);
  });

  it('takes lists as arrays and numbers as numbers, durations only as text with a unit', () => {
    const file = configFile(
      'types.json',
      '{"id": "n1", "cluster": "c", "nats": ["nats://a:1", "nats://b:2"], "maxSyncGap": 5, "verifyInterval": 1000}',
    );
    expect(problemsOf(() => loadNodeConfig({ config: file }, {}))).toEqual([
      `--verify-interval (UNDERSTUDY_VERIFY_INTERVAL): 1000 has no unit: write 1000s, or 1000ms for milliseconds (units: ms, s, m, h) (from "verifyInterval" in ${file})`,
    ]);
  });
});
