import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { registerNodeCommand } from '../../src/cli/nodeCommand.ts';
import { envName, loadNodeConfig, nodeSettings, type NodeConfig } from '../../src/config/config.ts';

// docker-compose.yml is for users (no Docker engine here): check that it agrees with the
// CLI's flags and with the NATS config files it mounts.

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(`${root}${path}`, 'utf8');

interface Service {
  image?: string;
  profiles?: string[];
  build?: string | { context: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const service = (name: string): Service => {
  const s = services[name];
  if (s === undefined) throw new Error(`no service ${name}`);
  return s;
};
const NATS = ['nats-1', 'nats-2', 'nats-3'];
const NODES = ['node-1', 'node-2', 'node-3'];

/** The long options `understudy node` accepts (`--lease-ttl`), from the real command. */
function nodeFlags(): Map<string, boolean> {
  const program = new Command('understudy');
  registerNodeCommand(program);
  const node = program.commands.find((c) => c.name() === 'node');
  if (node === undefined) throw new Error('no node command');
  // flag -> whether it takes a value
  return new Map(
    node.options.flatMap((o) => (o.long === undefined ? [] : [[o.long, o.required || o.optional]])),
  );
}

/** `['node', '--id=n', '--http', 'x']` -> Map { '--id' => 'n', '--http' => 'x' }. */
function parseFlags(args: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    expect(arg.startsWith('--'), `'${arg}' is not a flag`).toBe(true);
    const eq = arg.indexOf('=');
    if (eq > 0) flags.set(arg.slice(0, eq), arg.slice(eq + 1));
    else flags.set(arg, args[++i] ?? '');
  }
  return flags;
}

function nodeCommandFlags(name: string): Map<string, string> {
  const command = service(name).command ?? [];
  expect(command[0], `${name} runs 'understudy node'`).toBe('node');
  return parseFlags(command.slice(1));
}

/** The `${VAR:?message}` (or `${VAR:-default}`) variable a value comes from. */
const variableOf = (value: string | undefined): string | undefined =>
  /^\$\{(\w+)(:?[-?][^}]*)?\}$/.exec(value ?? '')?.[1];

describe('docker-compose.yml', () => {
  it('has etcd, three NATS servers and three nodes', () => {
    for (const name of ['etcd', ...NATS, ...NODES]) expect(Object.keys(services)).toContain(name);
  });

  it('etcd is 3.5 and checked with etcdctl endpoint health', () => {
    const etcd = service('etcd');
    expect(etcd.image).toMatch(/^quay\.io\/coreos\/etcd:v3\.5\.\d+$/);
    expect(etcd.healthcheck?.test).toEqual(
      expect.arrayContaining(['etcdctl', 'endpoint', 'health']),
    );
    expect(etcd.command).toContain('--listen-client-urls=http://0.0.0.0:2379');
  });

  it('NATS: >= 2.10, a config file per server that exists, fsyncs always and routes to all', () => {
    const names = new Set<string>();
    for (const name of NATS) {
      const nats = service(name);
      const [major, minor] = (/^nats:(\d+)\.(\d+)/.exec(nats.image ?? '') ?? [])
        .slice(1)
        .map(Number);
      expect((major ?? 0) * 100 + (minor ?? 0), `${name} image`).toBeGreaterThanOrEqual(210);
      const command = nats.command ?? [];
      const configPath = command[command.indexOf('-c') + 1] ?? '';
      // The config dir is mounted from the repository.
      const mount = (nats.volumes ?? []).find((v) => configPath.startsWith(`${v.split(':')[1]}/`));
      expect(mount, `${name} mounts ${configPath}`).toBeDefined();
      const [hostDir = '', containerDir = ''] = (mount ?? '').split(':');
      const hostFile = `${hostDir.replace(/^\.\//, '')}${configPath.slice(containerDir.length)}`;
      expect(existsSync(`${root}${hostFile}`), hostFile).toBe(true);
      const config = read(hostFile);
      expect(config).toMatch(/jetstream\s*\{[^}]*sync_interval:\s*always[^}]*\}/);
      expect(config).toMatch(/^http:\s*0\.0\.0\.0:8222$/m);
      expect(config).toMatch(/^listen:\s*0\.0\.0\.0:4222$/m);
      names.add(/^server_name:\s*(\S+)$/m.exec(config)?.[1] ?? '');
      for (const other of NATS) expect(config).toContain(`nats-route://${other}:6222`);
      // The store dir is a volume.
      const store = /store_dir:\s*(\S+)/.exec(config)?.[1];
      expect(nats.volumes?.some((v) => v.endsWith(`:${store}`))).toBe(true);
      const included = /^include\s+\.\/(\S+)$/m.exec(config)?.[1];
      expect(included).toBe('auth.conf');
      expect(existsSync(`${root}deploy/nats/${included}`)).toBe(true);
      expect(nats.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:8222/healthz');
    }
    expect(names).toEqual(new Set(NATS));
  });

  it('every node flag is one `understudy node` accepts, with a value where it takes one', () => {
    const accepted = nodeFlags();
    for (const name of NODES) {
      for (const [flag, value] of nodeCommandFlags(name)) {
        expect(accepted.has(flag), `${name}: ${flag} is not a flag of 'understudy node'`).toBe(
          true,
        );
        if (accepted.get(flag) === true) expect(value, `${name}: ${flag} value`).not.toBe('');
      }
    }
  });

  /** A node's settings as it runs: its command's flags over its environment. */
  function nodeConfigOf(name: string): NodeConfig {
    const camel = (flag: string): string =>
      flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const flags = Object.fromEntries(
      [...nodeCommandFlags(name)].map(([flag, value]) => [camel(flag), value]),
    );
    // `${VAR:?...}` is the operator's secret: any value stands for it here.
    const env = Object.fromEntries(
      Object.entries(service(name).environment ?? {}).map(([k, v]) => [
        k,
        variableOf(v) === undefined ? v : 'secret',
      ]),
    );
    return loadNodeConfig(flags, env);
  }

  it('nodes: unique ids, one cluster, the compose NATS servers and etcd, R3 stream', () => {
    const ids = new Set<string>();
    const clusters = new Set<string>();
    for (const name of NODES) {
      const flags = nodeCommandFlags(name);
      for (const required of ['--id', '--nats', '--lease-ttl', '--http', '--advertise']) {
        expect(flags.has(required), `${name} sets ${required}`).toBe(true);
      }
      const config = nodeConfigOf(name);
      ids.add(config.id);
      clusters.add(config.cluster);
      expect(new Set(config.nats)).toEqual(new Set(NATS.map((n) => `nats://${n}:4222`)));
      expect(config.etcd).toEqual(['http://etcd:2379']);
      expect(config.streamReplicas).toBe(3);
      const deps = service(name).depends_on ?? {};
      for (const dep of ['etcd', ...NATS]) expect(deps[dep]?.condition).toBe('service_healthy');
    }
    expect(ids.size).toBe(NODES.length);
    expect(clusters).toEqual(new Set(['main']));
  });

  it('nodes: the --http port is the health-checked, advertised and published container port', () => {
    const hostPorts = new Set<string>();
    for (const name of NODES) {
      const node = service(name);
      const config = nodeConfigOf(name);
      const [host, port] = config.http.split(':');
      expect(host, 'listens on all interfaces in its container').toBe('0.0.0.0');
      // Other nodes (switchover) and `cli status` reach it by its service name.
      expect(config.advertise).toBe(`http://${name}:${port}`);
      expect(node.healthcheck?.test.join(' ')).toContain(`http://127.0.0.1:${port}/healthz`);
      const published = (node.ports ?? []).map((p) => p.split(':'));
      for (const [bind, hostPort, container] of published) {
        expect(bind, `${name} publishes on loopback only`).toBe('127.0.0.1');
        expect(container).toBe(port);
        hostPorts.add(hostPort ?? '');
      }
      expect(node.build).toBe('.');
    }
    expect(hostPorts.size).toBe(NODES.length);
  });

  it('every published port is bound to 127.0.0.1; etcd is not published', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const port of s.ports ?? []) {
        expect(port, `${name} ${port}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
      }
    }
    expect(service('etcd').ports).toBeUndefined();
  });

  it('every password is required (${VAR:?...}), never defaulted', () => {
    const text = read('docker-compose.yml');
    const variables = [...text.matchAll(/\$\{(\w+)([^}]*)\}/g)];
    expect(variables.length).toBeGreaterThan(0);
    for (const [whole, name, rest] of variables) {
      if (/PASSWORD/.test(name ?? '')) expect(rest, whole).toMatch(/^:\?/);
    }
    expect(text).not.toMatch(/change-me/);
  });

  it('nodes: env settings exist, NATS credentials are the master user of auth.conf', () => {
    const known = new Set(Object.keys(nodeSettings).map(envName));
    const auth = read('deploy/nats/auth.conf');
    for (const name of NODES) {
      const env = service(name).environment ?? {};
      for (const key of Object.keys(env)) {
        expect(known.has(key), `${name}: ${key} is not a setting`).toBe(true);
      }
      expect(env['UNDERSTUDY_NATS_USER']).toBe('master');
      // The password is the one the NATS servers give the master user.
      const variable = variableOf(env['UNDERSTUDY_NATS_PASSWORD']);
      expect(variable).toBeDefined();
      for (const nats of NATS) {
        expect(variableOf(service(nats).environment?.[variable ?? ''])).toBe(variable);
      }
      expect(auth).toContain(`{ user: master, password: $${variable}, permissions: $MASTER }`);
      // No secret on the command line (visible in `ps`).
      expect((service(name).command ?? []).join(' ')).not.toMatch(/password|token/i);
    }
  });

  it('cli: the understudy command in the compose network, as the operator user', () => {
    const cli = service('cli');
    expect(cli.image).toBe(service('node-1').image);
    expect(cli.profiles).toEqual(['tools']);
    const env = cli.environment ?? {};
    const known = new Set(Object.keys(nodeSettings).map(envName));
    for (const key of Object.keys(env)) expect(known.has(key), key).toBe(true);
    // What `status`, `switchover`, `export` and `replay` read, from the environment alone.
    const nodeEnv = service('node-1').environment ?? {};
    expect(env['UNDERSTUDY_CLUSTER']).toBe(nodeEnv['UNDERSTUDY_CLUSTER']);
    expect(env['UNDERSTUDY_ETCD']).toBe(nodeEnv['UNDERSTUDY_ETCD']);
    expect(new Set(env['UNDERSTUDY_NATS']?.split(','))).toEqual(
      new Set(NATS.map((n) => `nats://${n}:4222`)),
    );
    expect(env['UNDERSTUDY_NATS_USER']).toBe('operator');
    const variable = variableOf(env['UNDERSTUDY_NATS_PASSWORD']);
    expect(read('deploy/nats/auth.conf')).toContain(
      `{ user: operator, password: $${variable}, permissions: $OPERATOR }`,
    );
  });

  it("auth.conf's subjects are the nodes' cluster", () => {
    const cluster = nodeConfigOf('node-1').cluster;
    const auth = read('deploy/nats/auth.conf');
    expect(auth).toContain(`"understudy.${cluster}.oplog"`);
    expect(auth).toContain(`"understudy.${cluster}.api.>"`);
    expect(auth).toContain(`UNDERSTUDY_${cluster.toUpperCase()}_OPLOG`);
    const subjects = auth.match(/"understudy\.[^."]+\./g) ?? [];
    expect(new Set(subjects)).toEqual(new Set([`"understudy.${cluster}.`]));
  });

  it('monitoring: Prometheus and Grafana mount deploy/ files that exist', () => {
    for (const name of ['prometheus', 'grafana']) {
      const s = service(name);
      expect(s.profiles).toEqual(['monitoring']);
      for (const volume of s.volumes ?? []) {
        const [hostPath = ''] = volume.split(':');
        if (hostPath.startsWith('./'))
          expect(existsSync(`${root}${hostPath.slice(2)}`), volume).toBe(true);
      }
    }
    expect(service('prometheus').command).toContain('--config.file=/etc/prometheus/prometheus.yml');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('builds dist/ in a first stage, then runs bin/understudy.js on node:24-slim with production deps', () => {
    expect(dockerfile.match(/^FROM node:24-slim\b/gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^RUN npm run build$/m);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(dockerfile).toMatch(
      /^ENTRYPOINT \["node", "--max-semi-space-size=64", "bin\/understudy\.js"\]$/m,
    );
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].flatMap(
      ([, args]) => (args ?? '').split(/\s+/).slice(0, -1), // the last one is the destination
    );
    expect(copied).toEqual(
      expect.arrayContaining([
        'package-lock.json',
        'tsconfig.build.json',
        'src',
        'bin',
        'machines',
      ]),
    );
    for (const path of copied) expect(existsSync(`${root}${path}`), path).toBe(true);
    expect(dockerfile).toMatch(/^EXPOSE 9100$/m);
  });

  it('.dockerignore keeps node_modules, a local build and tests out', () => {
    const ignore = read('.dockerignore').split('\n');
    for (const entry of ['node_modules', 'dist', '.git', 'test', '.env']) {
      expect(ignore).toContain(entry);
    }
  });
});
