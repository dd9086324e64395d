// The npm package as a user gets it: `npm pack`, installed into an empty project, used from
// plain JavaScript and from type-checked TypeScript (the README's client example, as written),
// and its `understudy` command, against a real local cluster (nats-server, etcd, a node).
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_SCHEMA_PATH } from '../../scripts/generateDocs.ts';
import { NodeFleet } from '../../src/tools/localCluster/nodeFleet.ts';
import { packageRoot } from '../../src/process/packageInfo.ts';
import { envWithout, runProcess, type CliResult } from '../harness/cli.ts';
import { startEtcd, startNats, type EtcdHandle, type NatsServerHandle } from '../harness/index.ts';

const root = packageRoot();
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  engines: { node: string };
};
const versionOf = (name: string): string =>
  (
    JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

type Run = CliResult;

/** Runs a command to its end, with an environment free of npm's and understudy's variables. */
function run(command: string, args: readonly string[], cwd: string): Promise<Run> {
  return runProcess(command, args, {
    cwd,
    env: envWithout(/^(npm_|UNDERSTUDY_|INIT_CWD$)/i),
    timeoutMs: 180_000,
  });
}

/** The README's client example: the first `ts` block under "## The client library". */
function readmeClientExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## The client library\n'));
  const block = /\n```ts\n([\s\S]*?)\n```\n/.exec(section)?.[1];
  if (block === undefined) throw new Error('README: no ts block under "## The client library"');
  return block;
}

const README_SERVER = "'nats://127.0.0.1:4222'";

const JS_CONSUMER = `
import { ApiError, createClient } from 'understudy';
import { loadNodeConfig } from 'understudy/node';

const client = await createClient({ servers: process.argv[2], cluster: 'main' });
try {
  await client.mountSegment('js-seg', 'js-storage', 1 << 20);
  const placement = await client.putStart('js/1', 512, 1);
  await client.putEnd('js/1');
  const record = await client.get('js/1');
  let missing;
  try {
    await client.get('js/none');
  } catch (err) {
    missing = err instanceof ApiError ? err.code : String(err);
  }
  const defaults = loadNodeConfig({ id: 'x', cluster: 'y' }, {});
  await client.unmountSegment('js-seg');
  console.log(JSON.stringify({ placement, record, missing, leaseTtl: defaults.leaseTtl }));
} finally {
  await client.close();
}
`;

// Type-checked, never run: the declarations are real types, not any.
const TS_TYPES = `
import { ApiError, createClient, objectExistsDetails, type Placement, type UnderstudyClient } from 'understudy';
import type { NodeConfig, RunningNode } from 'understudy/node';

export async function typed(servers: string): Promise<Placement> {
  const client: UnderstudyClient = await createClient({ servers, cluster: 'main' });
  // @ts-expect-error: a size is a number
  await client.putStart('k', '1', 1);
  // @ts-expect-error: there is no such option
  await createClient({ servers, cluster: 'main', retries: 3 });
  const config: Pick<NodeConfig, 'leaseTtl' | 'nats'> = { leaseTtl: 5000, nats: ['nats://a:4222'] };
  const stop: RunningNode['stop'] | undefined = undefined;
  void config;
  void stop;
  try {
    return await client.putStart('k', 1, 1);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'OBJECT_EXISTS') {
      throw new Error(String(objectExistsDetails(err)?.complete));
    }
    throw err;
  }
}
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    skipLibCheck: false,
    types: ['node'],
    outDir: 'out',
  },
  include: ['*.ts'],
};

/** A minimal consumer's tsconfig: no `types`, no `lib`, as `tsc --init` users and TS 6+ have. */
const BARE_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    skipLibCheck: false,
    noEmit: true,
  },
  include: ['readme.ts'],
};

/** A consumer that fails inside the package; prints the stack as Node shows it with source maps. */
const STACK_CONSUMER = `
import { createClient } from 'understudy';
try {
  await createClient({ cluster: 'main' });
} catch (err) {
  console.log(err.stack);
}
`;

describe('the npm package, installed into an empty project', () => {
  let work: string;
  let app: string;
  let tarball: string;
  let files: string[];
  let install: Run;
  let nats: NatsServerHandle;
  let etcd: EtcdHandle;
  let fleet: NodeFleet;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'understudy-pack-'));
    app = join(work, 'app');
    // dist/ is fresh (test/buildDist.ts built it): pack it as is.
    const packed = await run(
      'npm',
      ['pack', '--ignore-scripts', '--json', '--pack-destination', work],
      root,
    );
    expect(packed.code, packed.stderr).toBe(0);
    const [info] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = join(work, info.filename);
    files = info.files.map((f) => f.path);
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'app', private: true, type: 'module' }),
    );
    install = await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        tarball,
        `typescript@${versionOf('typescript')}`,
        `@types/node@${versionOf('@types/node')}`,
      ],
      app,
    );
    expect(install.code, install.stderr).toBe(0);
    [nats, etcd] = await Promise.all([startNats(), startEtcd()]);
    fleet = await NodeFleet.start(['n1'], {
      cluster: 'main',
      nats: [nats.url],
      etcd: [etcd.endpoint],
      leaseTtlMs: 5000,
    });
    await fleet.primary(60_000);
  }, 300_000);

  afterAll(async () => {
    await fleet?.[Symbol.asyncDispose]();
    await nats?.[Symbol.asyncDispose]();
    await etcd?.[Symbol.asyncDispose]();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }, 60_000);

  it('ships the files of src/ that are not TypeScript (page assets) next to the build', () => {
    // A tsconfig.json (the inspect page's) configures the build: not an asset.
    const assets = (dir: string): string[] =>
      readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory()
          ? assets(`${dir}/${entry.name}`)
          : entry.name.endsWith('.ts') || entry.name === 'tsconfig.json'
            ? []
            : [`${dir}/${entry.name}`],
      );
    for (const asset of assets('src')) expect(files).toContain(`dist/${asset}`);
  });

  it('ships the build, the command and the docs, not the sources, tests or benchmarks', () => {
    for (const path of files) {
      expect(path, path).toMatch(
        /^(dist\/(src|machines)\/|bin\/|docs\/|README\.md$|CHANGELOG\.md$|package\.json$|LICENSE$)/,
      );
      expect(path, path).not.toMatch(/\.ts$(?<!\.d\.ts)/);
    }
    for (const path of [
      'dist/src/client/index.js',
      'dist/src/client/index.d.ts',
      'dist/src/process/index.js',
      'dist/src/process/index.d.ts',
      'dist/src/cli/main.js',
      'bin/understudy.js',
      'CHANGELOG.md',
      'docs/protocol.schema.json',
    ]) {
      expect(files).toContain(path);
    }
  });

  it('ships nothing an earlier build left for a source since moved or deleted', () => {
    // The build prunes dist/: tsc and the asset copies only ever add (a local dist/ once shipped
    // dist/src/cli/admitItems.js, deleted from the sources, with a map it lacked).
    for (const path of files.filter((f) => /^dist\/(src|machines)\//.test(f))) {
      const built = path.slice('dist/'.length);
      const source = built.endsWith('.d.ts')
        ? built.replace(/\.d\.ts$/, '.ts')
        : built.endsWith('.js') && !existsSync(join(root, built))
          ? built.replace(/\.js$/, '.ts')
          : built;
      expect(existsSync(join(root, source)), path).toBe(true);
    }
  });

  it('ships no source map and names no file it lacks (stack frames, sourceMappingURL)', async () => {
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    const installed = join(app, 'node_modules', pkg.name);
    for (const path of files.filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(join(installed, path), 'utf8');
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text)?.[1];
      if (url !== undefined) expect(existsSync(join(installed, path, '..', url)), path).toBe(true);
    }
    writeFileSync(join(app, 'stack.mjs'), STACK_CONSUMER);
    const result = await run(process.execPath, ['--enable-source-maps', 'stack.mjs'], app);
    expect(result.code, result.stderr).toBe(0);
    const frames = [...result.stdout.matchAll(/(?:file:\/\/)?(\/[^\s():]+):\d+:\d+/g)]
      .map((m) => m[1] ?? '')
      .filter((path) => path.includes(`node_modules/${pkg.name}/`));
    expect(frames.length, result.stdout).toBeGreaterThan(0);
    for (const frame of frames) expect(existsSync(frame), frame).toBe(true);
  });

  it.each(['latest', '5.9'])(
    "the README's client example type-checks with typescript@%s and nothing else installed",
    async (version) => {
      const project = join(work, `ts-${version}`);
      mkdirSync(project);
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ name: 'bare', private: true, type: 'module' }),
      );
      const installed = await run(
        'npm',
        [
          'install',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          tarball,
          `typescript@${version}`,
        ],
        project,
      );
      expect(installed.code, installed.stderr).toBe(0);
      writeFileSync(join(project, 'readme.ts'), readmeClientExample());
      writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(BARE_TSCONFIG));
      const tsc = await run(
        process.execPath,
        [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
        project,
      );
      const tscVersion = (
        JSON.parse(
          readFileSync(join(project, 'node_modules', 'typescript', 'package.json'), 'utf8'),
        ) as { version: string }
      ).version;
      expect(tsc.code, `typescript ${tscVersion}: ${tsc.stdout}${tsc.stderr}`).toBe(0);
      if (version === 'latest') expect(Number(tscVersion.split('.')[0])).toBeGreaterThanOrEqual(6);
    },
    300_000,
  );

  it('installs without an engine warning on a Node the package supports', () => {
    const major = Number(process.versions.node.split('.')[0]);
    expect(pkg.engines.node).toBe('>=22');
    if (major >= 22) {
      expect(install.stderr).not.toContain('EBADENGINE');
    } else {
      // The machine's Node 20 is past its end of life: npm says so, and the package still runs.
      expect(install.stderr).toContain('EBADENGINE');
    }
  });

  it('plain JavaScript: import understudy and understudy/node, write and read', async () => {
    writeFileSync(join(app, 'consumer.mjs'), JS_CONSUMER);
    const result = await run(process.execPath, ['consumer.mjs', nats.url], app);
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as {
      placement: { key: string; replicas: unknown[]; seq: number };
      record: { key: string; replicas: { status: string }[] };
      missing: string;
      leaseTtl: number;
    };
    expect(out.placement).toMatchObject({ key: 'js/1', size: 512 });
    expect(out.placement.replicas).toHaveLength(1);
    expect(out.record.replicas.map((r) => r.status)).toEqual(['complete']);
    expect(out.missing).toBe('OBJECT_NOT_FOUND');
    expect(out.leaseTtl).toBe(5000);
  });

  it("TypeScript: the README's client example type-checks with tsc and runs, twice", async () => {
    const example = readmeClientExample();
    expect(example).toContain("from 'understudy'");
    expect(example.split(README_SERVER)).toHaveLength(2);
    // The one change: the test cluster's address instead of the default port.
    writeFileSync(join(app, 'readme.ts'), example.replace(README_SERVER, JSON.stringify(nats.url)));
    writeFileSync(join(app, 'typed.ts'), TS_TYPES);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    const tsc = await run(
      process.execPath,
      [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
      app,
    );
    expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);
    for (const round of [1, 2]) {
      const result = await run(process.execPath, [join('out', 'readme.js')], app);
      expect(result.code, `run ${round}: ${result.stderr}`).toBe(0);
      expect(result.stdout, `run ${round}`).toMatch(
        /^replicas of user\/42: seg-[ab]@\d+ complete, seg-[ab]@\d+ complete$/m,
      );
    }
    // tsc checks every declaration file of the installed tree (skipLibCheck: false): 20-60 s
    // on the shared 2-core machine.
  }, 300_000);

  it('a client written from docs/protocol.schema.json alone: raw NATS requests and replies match it', async () => {
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
    ajv.addKeyword('x-understudy');
    const document = JSON.parse(readFileSync(PROTOCOL_SCHEMA_PATH, 'utf8')) as {
      'x-understudy': { operations: Record<string, { subject: string }> };
    };
    ajv.addSchema(document, 'protocol');
    const conforms = (def: string, value: unknown): boolean =>
      ajv.validate({ $ref: `protocol#/$defs/${def}` }, value) ||
      (() => {
        throw new Error(`${def}: ${JSON.stringify(value)}: ${ajv.errorsText()}`);
      })();
    const nc = await connect({ servers: nats.url });
    const replies: Array<{ op: string; ok: boolean; code?: string }> = [];
    const send = async (op: string, body: unknown, schemaValid = true): Promise<unknown> => {
      const subject = document['x-understudy'].operations[op]?.subject.replace('{cluster}', 'main');
      expect(subject, op).toBe(`understudy.main.api.${op}`);
      expect(ajv.validate({ $ref: `protocol#/$defs/${op}Request` }, body), op).toBe(schemaValid);
      const msg = await nc.request(subject ?? '', JSON.stringify(body), { timeout: 10_000 });
      const reply = JSON.parse(new TextDecoder().decode(msg.data)) as {
        ok: boolean;
        result?: unknown;
        error?: { code: string };
      };
      conforms(`${op}Reply`, reply);
      replies.push({ op, ok: reply.ok, ...(reply.error ? { code: reply.error.code } : {}) });
      return reply.result;
    };
    try {
      await send('mountSegment', { segmentId: 'raw-a', nodeId: 'raw-1', size: 1 << 20 });
      await send('mountSegment', { segmentId: 'raw-b', nodeId: 'raw-2', size: 1 << 20 });
      await send('putStart', { key: 'raw/1', size: 100, replicaNum: 2 });
      await send('putEnd', { key: 'raw/1' });
      await send('get', { key: 'raw/1' });
      await send('exists', { key: 'raw/1' });
      await send('putStartBatch', {
        items: [
          { key: 'raw/2', size: 100, replicaNum: 1 },
          { key: 'raw/1', size: 1, replicaNum: 1 },
        ],
      });
      await send('putEndBatch', { keys: ['raw/2', 'raw/none'] });
      await send('putStart', { key: 'raw/3', size: 10, replicaNum: 1 });
      await send('putRevoke', { key: 'raw/3' });
      await send('remove', { key: 'raw/2' });
      await send('get', { key: 'raw/none' });
      await send('mountSegment', { segmentId: 'x', nodeId: 'y', size: 1, colour: 'red' }, false);
      await send('unmountSegment', { segmentId: 'raw-a' });
      await send('unmountSegment', { segmentId: 'raw-b' });
    } finally {
      await nc.close();
    }
    expect(replies.filter((r) => !r.ok)).toEqual([
      { op: 'get', ok: false, code: 'OBJECT_NOT_FOUND' },
      { op: 'mountSegment', ok: false, code: 'BAD_REQUEST' },
    ]);
  });

  it('the installed `understudy` command: --version, and status of the cluster', async () => {
    const bin = join(app, 'node_modules', '.bin', 'understudy');
    const version = await run(bin, ['--version'], app);
    expect(version).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    const status = await run(bin, ['status', '--cluster', 'main', '--etcd', etcd.endpoint], app);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^n1\*\s+primary\s/m);
  });
});
