// The `understudy` command as a user meets it, run as a child process (the build in dist/):
// usage errors, --version and --help, a node waiting for NATS and etcd, and `status` when the
// primary has died.
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeSettings } from '../../src/config/config.ts';
import { packageRoot } from '../../src/process/packageInfo.ts';
import { envName, flagName } from '../../src/config/settings.ts';
import { NodeFleet } from '../../src/tools/localCluster/nodeFleet.ts';
import { startEtcd, startNats } from '../harness/index.ts';
import { runCli, type CliResult } from '../harness/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'understudy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A usage error: exit 2, one message on stderr, nothing on stdout, no stack trace. */
function expectUsageError(result: CliResult): void {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe('understudy: usage errors name the flag and the variable, exit 2, no stack trace', () => {
  it('node without --id or --cluster', async () => {
    const result = await runCli(['node']);
    expectUsageError(result);
    expect(result.stderr).toBe(
      [
        'understudy node: bad configuration:',
        '  --id (UNDERSTUDY_ID) is required (or "id" in a config file)',
        '  --cluster (UNDERSTUDY_CLUSTER) is required (or "cluster" in a config file)',
        '',
      ].join('\n'),
    );
  });

  it('a duration without a unit, a lease TTL below the minimum', async () => {
    const bare = await runCli(['node', '--id', 'n1', '--cluster', 'c', '--lease-ttl', '5']);
    expectUsageError(bare);
    expect(bare.stderr).toContain('--lease-ttl (UNDERSTUDY_LEASE_TTL): "5" has no unit');
    const short = await runCli(['node', '--id', 'n1', '--cluster', 'c', '--lease-ttl', '200ms']);
    expectUsageError(short);
    expect(short.stderr).toContain('"200ms" is below the minimum, 1s');
  });

  it('a config file with an unknown key, or one that does not parse', async () => {
    const typo = join(dir, 'typo.json');
    writeFileSync(typo, '{"id": "n1", "cluster": "c", "leaseTTL": "5s"}');
    const unknown = await runCli(['node', '--config', typo]);
    expectUsageError(unknown);
    expect(unknown.stderr).toContain(
      `config file ${typo}: unknown setting "leaseTTL" (did you mean "leaseTtl"?)`,
    );
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{\n  "id": "n1",\n  "cluster": "c",\n}\n');
    const bad = await runCli(['status', '--config', broken]);
    expectUsageError(bad);
    expect(bad.stderr).toContain(`config file ${broken}: not valid JSON at line 4 column 1`);
  });

  it('status without a cluster', async () => {
    const result = await runCli(['status']);
    expectUsageError(result);
    expect(result.stderr).toContain('--cluster (UNDERSTUDY_CLUSTER) is required');
  });

  it('an unknown flag: one line that says where to look, not the whole help', async () => {
    for (const args of [
      ['status', '--clutser', 'c'],
      ['node', '--lease-tll', '5s'],
      ['checkpoint', 'list', '--nats-server', 'x'],
    ]) {
      const result = await runCli(args);
      expectUsageError(result);
      expect(result.stderr.trimEnd().split('\n'), result.stderr).toHaveLength(1);
      expect(result.stderr).toMatch(
        new RegExp(`^error: unknown option '${args.at(-2)}'.*\\(see --help\\)\n$`),
      );
    }
  });

  it('an unknown command or a missing argument: one line too', async () => {
    const unknown = await runCli(['statsu']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain('(see --help)');
  });
});

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('understudy: a connection error names the address, the cause and the flag', () => {
  it('checkpoint, replay, export (NATS); status, switchover, checkpoint create (etcd)', async () => {
    const nats = `nats://127.0.0.1:${await deadPort()}`;
    const etcd = `http://127.0.0.1:${await deadPort()}`;
    const natsCases = [
      ['checkpoint', 'list', '--cluster', 'c', '--nats', nats],
      ['replay', '--cluster', 'c', '--nats', nats],
      ['export', '--cluster', 'c', '--nats', nats],
    ];
    const etcdCases = [
      ['status', '--cluster', 'c', '--etcd', etcd],
      ['switchover', '--cluster', 'c', '--etcd', etcd, '--timeout', '2s'],
      ['checkpoint', 'create', '--cluster', 'c', '--etcd', etcd],
    ];
    const runs = await Promise.all(
      [...natsCases, ...etcdCases].map(async (args) => ({ args, run: await runCli(args) })),
    );
    for (const { args, run } of runs) {
      const viaNats = natsCases.includes(args);
      const address = viaNats ? nats : etcd;
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).not.toBe(0);
      expect(run.stderr, args.join(' ')).toContain(
        `cannot reach ${viaNats ? 'NATS' : 'etcd'} at ${address}: `,
      );
      expect(run.stderr, args.join(' ')).toContain(viaNats ? '--nats' : '--etcd');
      expect(run.stderr, args.join(' ')).not.toMatch(/^\s+at /m);
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    expect(runs[0]?.run.stderr).toMatch(/connection refused|ECONNREFUSED/i);
  });
});

describe('understudy: --version and --help', () => {
  it.each(['checkpoint', 'machines', 'switchover', 'export', 'demo', 'replay', 'node'])(
    '%s --help has examples',
    async (name) => {
      const result = await runCli([name, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`Examples:\n {2}(understudy|UNDERSTUDY_)`));
    },
  );

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as {
      version: string;
    };
    const result = await runCli(['--version']);
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('--help lists the commands and examples', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    for (const name of ['node', 'status', 'switchover', 'export', 'replay', 'machines', 'demo']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${name}\\s`, 'm'));
    }
    expect(result.stdout).toContain('Examples:');
  });

  it('node --help shows every setting: a flag with its default and variable, or the variable of a secret', async () => {
    const result = await runCli(['node', '--help']);
    expect(result.code).toBe(0);
    const help = result.stdout;
    // One block per option: from its flag to the next one (long lines may wrap).
    const blocks = help.split(/\n {2}(?=-)/).map((b) => b.replace(/\s+/g, ' '));
    for (const [key, setting] of Object.entries(nodeSettings)) {
      const block = blocks.find((b) => b.startsWith(`${flagName(key)} `));
      if (setting.secret) {
        expect(block, key).toBeUndefined();
        expect(help).toContain(envName(key));
        continue;
      }
      expect(block, key).toBeDefined();
      expect(block, key).toContain(`env ${envName(key)})`);
      if (setting.presence === 'default') expect(block, key).toMatch(/\(default \S+; env /);
    }
    expect(help).toContain('Examples:');
  });
});

/** The fenced blocks of `lang` in a markdown file of the repository. */
function codeBlocks(file: string, lang: string): string[] {
  const text = readFileSync(join(packageRoot(), file), 'utf8');
  return [...text.matchAll(new RegExp(`\\n\`\`\`${lang}\\n([\\s\\S]*?)\\n\`\`\`\\n`, 'g'))].map(
    (m) => m[1] ?? '',
  );
}

/** The arguments of the first `understudy node ...` command line in `blocks`. */
function nodeCommandIn(blocks: readonly string[]): string[] {
  const line = blocks
    .map((b) => b.replace(/\\\n\s*/g, ' '))
    .flatMap((b) => b.split('\n'))
    .find((l) => l.startsWith('understudy node '));
  if (line === undefined) throw new Error('no `understudy node` command line');
  return line.split(/\s+/).slice(1);
}

describe('the documented node settings are valid as written', () => {
  it("the README's `understudy node` example", async () => {
    const args = nodeCommandIn(codeBlocks('README.md', 'sh'));
    const result = await runCli([...args, '--print-config']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ id: 'n1', cluster: 'main', leaseTtl: '5s' });
  });

  it('--print-config > n1.json, then --config n1.json: the same settings', async () => {
    const printed = await runCli([
      'node',
      '--id',
      'n1',
      '--cluster',
      'main',
      '--lease-ttl',
      '5s',
      '--checkpoint-interval',
      '10m',
      '--print-config',
    ]);
    expect(printed.code, printed.stderr).toBe(0);
    const file = join(dir, 'printed.json');
    writeFileSync(file, printed.stdout);
    const again = await runCli(['node', '--config', file, '--print-config']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(printed.stdout);
  });

  it("the operator's guide: its command line and its config file give the same settings", async () => {
    const fromFlags = await runCli([
      ...nodeCommandIn(codeBlocks('docs/operations.md', 'sh')),
      '--print-config',
    ]);
    expect(fromFlags.code, fromFlags.stderr).toBe(0);
    const [json] = codeBlocks('docs/operations.md', 'json');
    const file = join(dir, 'n1.json');
    writeFileSync(file, json ?? '');
    const fromFile = await runCli(['node', '--config', file, '--print-config']);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toEqual(JSON.parse(fromFlags.stdout));
  });
});

describe('understudy node waits for NATS and etcd, saying where it looks', () => {
  it('warns with the address on each attempt, then starts when they come up', async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    await nats.stop();
    await etcd.stop();
    await using fleet = await NodeFleet.start(['n1'], {
      cluster: 'waits',
      nats: [nats.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: 2000,
    });
    const node = fleet.node('n1');
    const natsDown = (l: { event?: string; attempt?: unknown }, attempt: number): boolean =>
      l.event === 'natsUnavailable' && l.attempt === attempt;
    const first = await node.waitForLog((l) => natsDown(l, 1), 30_000);
    expect(first.msg).toMatch(
      new RegExp(`^waiting for NATS at ${nats.url}: .*; retrying in 500 ms$`),
    );
    // Its status server answers meanwhile, saying what it waits for.
    expect(await node.status()).toMatchObject({
      nodeId: 'n1',
      role: 'starting',
      waitingFor: `NATS at ${nats.url}`,
    });
    await node.waitForLog((l) => natsDown(l, 2), 30_000);
    await nats.restart();
    await node.waitForLog((l) => l.event === 'natsConnected', 30_000);
    const etcdDown = await node.waitForLog((l) => l.event === 'etcdUnavailable', 30_000);
    expect(etcdDown.msg).toContain(`waiting for etcd at ${etcd.endpoint}: `);
    await etcd.restart();
    await node.waitForLog((l) => l.event === 'etcdConnected', 30_000);
    expect((await fleet.primary(30_000)).id).toBe('n1');
  });
});

describe('understudy node refuses an --id a live node runs with', () => {
  it('exits 2 naming the address of the node that holds the id; that node keeps serving', async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    await using fleet = await NodeFleet.start(['n1', 'n2'], {
      cluster: 'twins',
      nats: [nats.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: 2000,
    });
    const primary = await fleet.primary(60_000);
    const holder = fleet.nodes.find((n) => n !== primary)!;
    await holder.waitForStatus((s) => s.role === 'standby', 30_000);
    const result = await runCli([
      'node',
      '--id',
      holder.id,
      '--cluster',
      'twins',
      '--nats',
      nats.url,
      '--etcd',
      etcd.endpoint,
      '--lease-ttl',
      '2s',
      '--http',
      '127.0.0.1:0',
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(
      `understudy node: another node is running with id ${holder.id} at ${holder.url}; refusing to start`,
    );
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect((await holder.status()).role).toBe('standby');
    expect((await fleet.primary(10_000)).id).toBe(primary.id);
  });
});

describe('fault 6: understudy node exits 2 naming the stream setting NATS JetStream refuses', () => {
  const nodeArgs = (natsUrl: string, etcdEndpoint: string, cluster: string): string[] => [
    'node',
    '--id',
    'n1',
    '--cluster',
    cluster,
    '--nats',
    natsUrl,
    '--etcd',
    etcdEndpoint,
    '--lease-ttl',
    '2s',
  ];

  it('--stream-max-age 1m (3 checkpoint intervals, below the 2m duplicate window)', async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const result = await runCli(
      [
        ...nodeArgs(nats.url, etcd.endpoint, 'maxage'),
        '--stream-max-age',
        '1m',
        '--checkpoint-interval',
        '20s',
      ],
      30_000,
    );
    expectUsageError(result);
    expect(result.stderr.trim().split('\n')).toEqual([
      "understudy node: bad configuration: --stream-max-age (UNDERSTUDY_STREAM_MAX_AGE): 1m is shorter than the OpLog stream's duplicate window (2m), which NATS JetStream refuses; set 0 (no age limit: checkpoints trim the stream) or at least 2m",
    ]);
  });

  it('--stream-replicas 3 against a nats-server that is not clustered: refused by the server, not waited for', async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    const result = await runCli(
      [...nodeArgs(nats.url, etcd.endpoint, 'replicas'), '--stream-replicas', '3'],
      30_000,
    );
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.stderr.trim().split('\n')).toEqual([
      'understudy node: bad configuration: --stream-replicas (UNDERSTUDY_STREAM_REPLICAS): NATS JetStream refused UNDERSTUDY_REPLICAS_OPLOG: replicas > 1 not supported in non-clustered mode',
    ]);
  });
});

describe('understudy status when the primary has died', () => {
  it('exits 3 and says the key holder does not answer', async () => {
    await using nats = await startNats();
    await using etcd = await startEtcd();
    await using fleet = await NodeFleet.start(['n1', 'n2'], {
      cluster: 'dead',
      nats: [nats.url],
      etcd: [etcd.endpoint],
      // Long enough that the dead primary still holds the leader key when status runs.
      leaseTtlMs: 10_000,
    });
    await fleet.primary(60_000);
    const access = ['--cluster', 'dead', '--etcd', etcd.endpoint];
    const before = await runCli(['status', ...access]);
    expect(before.code, before.stdout + before.stderr).toBe(0);
    // Kill the node status shows holding the leader key (`*`): on a loaded machine the role
    // may have moved since fleet.primary() answered.
    const holder = /^(\S+)\*\s+primary\s/m.exec(before.stdout)?.[1];
    expect(holder, before.stdout).toBeDefined();
    const primary = fleet.node(holder ?? '');
    await primary.kill();
    const result = await runCli(['status', ...access]);
    expect(result.code, result.stdout + result.stderr).toBe(3);
    expect(result.stdout).toMatch(new RegExp(`^${primary.id}\\*\\s+primary\\(unreachable\\)`, 'm'));
    expect(result.stderr).toContain(
      `no primary answers: ${primary.id} holds the leader key (epoch `,
    );
  });
});

describe('understudy demo', () => {
  it('through a pipe: no progress line rewritten with \\r, the failover timeline, no write lost', async () => {
    const result = await runCli(['demo', '--before', '1s', '--after', '1s'], 180_000);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain('\r');
    expect(result.stdout).toContain('write load: 16 writers for 1000 ms, then kill -9');
    expect(result.stdout).toMatch(/^failover timeline$/m);
    expect(result.stdout).toMatch(/^acknowledged writes: [1-9]\d*; lost: 0; log entries: \d+$/m);
  }, 200_000);

  it('--groups 4: only the groups of the killed process fail over, the others keep answering, no write lost', async () => {
    const result = await runCli(
      ['demo', '--groups', '4', '--before', '2s', '--after', '1s'],
      180_000,
    );
    expect(result.code, result.stderr).toBe(0);
    const rows = result.stdout.split('\n').filter((l) => /^g\d /.test(l));
    expect(rows).toHaveLength(4);
    const failed = rows.filter((r) => r.endsWith('(failed over)'));
    // 3 processes, 4 groups spread 2-1-1: the killed process led 1 or 2 of them.
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length).toBeLessThanOrEqual(2);
    const gap = /longest gap between acknowledgements while n\d's failed over: (\d+) ms$/m.exec(
      result.stdout,
    );
    // The others' answers keep flowing: far less than the TTL (2 s) the failed groups wait out.
    expect(Number(gap?.[1])).toBeLessThan(1000);
    expect(result.stdout).toMatch(/^acknowledged writes: [1-9]\d*; lost: 0$/m);
  }, 200_000);
});
