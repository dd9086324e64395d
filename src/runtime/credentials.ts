// Credentials and TLS for NATS and etcd: the config fields, how they become connection
// options, and how a config is shown without its secrets.
import { readFileSync } from 'node:fs';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { z } from 'zod';

const text = z.string().min(1);

/**
 * The security settings of `understudy node` (merge into the node config schema; each has
 * the usual env name, e.g. `natsPasswordFile` is `UNDERSTUDY_NATS_PASSWORD_FILE`). A secret
 * comes either inline (`natsPassword`, best from the environment) or from a file
 * (`natsPasswordFile`, e.g. a Docker secret); `*File` fields are paths, read when the
 * connection options are built. Use {@link validateSecurityConfig} for the cross-field rules.
 */
export const securityConfigSchema = z.object({
  /** NATS user (user/password auth). */
  natsUser: text.optional(),
  natsPassword: text.optional(),
  natsPasswordFile: text.optional(),
  /** NATS token auth. */
  natsToken: text.optional(),
  natsTokenFile: text.optional(),
  /** A NATS `.creds` file (user JWT + nkey seed, decentralized auth). */
  natsCredsFile: text.optional(),
  /** A file holding an nkey user seed (`SU...`). */
  natsNkeySeedFile: text.optional(),
  /** TLS to NATS: CA bundle, client certificate and key (PEM files). */
  natsTlsCa: text.optional(),
  natsTlsCert: text.optional(),
  natsTlsKey: text.optional(),
  /** etcd user/password auth. */
  etcdUser: text.optional(),
  etcdPassword: text.optional(),
  etcdPasswordFile: text.optional(),
  /** TLS to etcd: CA bundle (required for TLS), client certificate and key (PEM files). */
  etcdTlsCa: text.optional(),
  etcdTlsCert: text.optional(),
  etcdTlsKey: text.optional(),
});

/** The security settings as parsed (every field optional). */
export type SecurityConfig = z.output<typeof securityConfigSchema>;

/** Settings that hold a secret value: never logged, shown as `***` by {@link redact}. */
export const SECRET_FIELDS: readonly string[] = ['natsPassword', 'natsToken', 'etcdPassword'];

/** The security settings contradict each other (two auth methods, a key without a cert...). */
export class SecurityConfigError extends Error {
  override readonly name = 'SecurityConfigError';
  constructor(
    /** Every problem found, each naming its fields. */
    readonly problems: readonly string[],
  ) {
    super(`bad security configuration: ${problems.join('; ')}`);
  }
}

/** A credentials or certificate file could not be read (its content is never in the message). */
export class CredentialsFileError extends Error {
  override readonly name = 'CredentialsFileError';
  constructor(
    /** The setting that named the file (`natsPasswordFile`, ...). */
    readonly field: string,
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: cannot read ${path}`, options);
  }
}

/**
 * Every contradiction in `cfg`, one message per problem naming the fields (empty when the
 * settings are consistent): at most one NATS auth method (user/password, token, creds file,
 * nkey seed); a secret inline or from a file, not both; a password needs a user; a TLS
 * certificate needs its key and the other way round; etcd TLS needs a CA.
 */
export function validateSecurityConfig(cfg: SecurityConfig): string[] {
  const problems: string[] = [];
  const both = (a: keyof SecurityConfig, b: keyof SecurityConfig): void => {
    if (cfg[a] !== undefined && cfg[b] !== undefined) {
      problems.push(`set ${a} or ${b}, not both`);
    }
  };
  both('natsPassword', 'natsPasswordFile');
  both('natsToken', 'natsTokenFile');
  both('etcdPassword', 'etcdPasswordFile');
  const natsMethods = [
    cfg.natsUser !== undefined ? 'natsUser' : undefined,
    cfg.natsToken !== undefined || cfg.natsTokenFile !== undefined ? 'natsToken' : undefined,
    cfg.natsCredsFile !== undefined ? 'natsCredsFile' : undefined,
    cfg.natsNkeySeedFile !== undefined ? 'natsNkeySeedFile' : undefined,
  ].filter((m) => m !== undefined);
  if (natsMethods.length > 1) {
    problems.push(`one NATS auth method at a time, got ${natsMethods.join(', ')}`);
  }
  if (cfg.natsUser === undefined && (cfg.natsPassword ?? cfg.natsPasswordFile) !== undefined) {
    problems.push('natsPassword needs natsUser');
  }
  if (cfg.etcdUser === undefined && (cfg.etcdPassword ?? cfg.etcdPasswordFile) !== undefined) {
    problems.push('etcdPassword needs etcdUser');
  }
  if ((cfg.natsTlsCert === undefined) !== (cfg.natsTlsKey === undefined)) {
    problems.push('natsTlsCert and natsTlsKey go together');
  }
  if ((cfg.etcdTlsCert === undefined) !== (cfg.etcdTlsKey === undefined)) {
    problems.push('etcdTlsCert and etcdTlsKey go together');
  }
  if (cfg.etcdTlsCert !== undefined && cfg.etcdTlsCa === undefined) {
    problems.push('etcdTlsCert needs etcdTlsCa');
  }
  return problems;
}

function check(cfg: SecurityConfig): void {
  const problems = validateSecurityConfig(cfg);
  if (problems.length > 0) throw new SecurityConfigError(problems);
}

function readBytes(field: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CredentialsFileError(field, path, { cause: err });
  }
}

/** A secret file's text without the trailing newline editors and `echo` add. */
function readSecret(field: string, path: string): string {
  return readBytes(field, path)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** An inline secret, or the content of its file, or undefined. */
function secret(
  cfg: SecurityConfig,
  inline: 'natsPassword' | 'natsToken' | 'etcdPassword',
  file: 'natsPasswordFile' | 'natsTokenFile' | 'etcdPasswordFile',
): string | undefined {
  const path = cfg[file];
  return path !== undefined ? readSecret(file, path) : cfg[inline];
}

/**
 * The NATS connection options for `cfg` (spread them into `connect({...})`): `user`/`pass`,
 * or `token`, or an `authenticator` for a creds file or an nkey seed (the file is read again
 * at every (re)connect, so a rotated file is picked up; it is read once here too, so a
 * missing file fails now), and `tls` with the CA / certificate / key files. Empty when no
 * security is configured. Throws {@link SecurityConfigError} or {@link CredentialsFileError}.
 */
export function natsConnectionOptions(cfg: SecurityConfig): Partial<NodeConnectionOptions> {
  check(cfg);
  const options: Partial<NodeConnectionOptions> = {};
  if (cfg.natsUser !== undefined) {
    options.user = cfg.natsUser;
    options.pass = secret(cfg, 'natsPassword', 'natsPasswordFile') ?? '';
  }
  const token = secret(cfg, 'natsToken', 'natsTokenFile');
  if (token !== undefined) options.token = token;
  const credsFile = cfg.natsCredsFile;
  if (credsFile !== undefined) {
    readBytes('natsCredsFile', credsFile);
    options.authenticator = credsAuthenticator(() => readBytes('natsCredsFile', credsFile));
  }
  const seedFile = cfg.natsNkeySeedFile;
  if (seedFile !== undefined) {
    const seed = (): Uint8Array =>
      new TextEncoder().encode(readSecret('natsNkeySeedFile', seedFile));
    seed();
    options.authenticator = nkeyAuthenticator(seed);
  }
  if (cfg.natsTlsCa !== undefined || cfg.natsTlsCert !== undefined) {
    options.tls = {
      ...(cfg.natsTlsCa !== undefined ? { caFile: cfg.natsTlsCa } : {}),
      ...(cfg.natsTlsCert !== undefined ? { certFile: cfg.natsTlsCert } : {}),
      ...(cfg.natsTlsKey !== undefined ? { keyFile: cfg.natsTlsKey } : {}),
    };
  }
  return options;
}

/** How to open etcd: the shape of `EtcdConnectionOptions` (src/adapters/etcd/etcdClient.ts). */
export interface EtcdSecureOptions {
  readonly endpoints: readonly string[];
  readonly auth?: { readonly username: string; readonly password: string };
  readonly credentials?: {
    readonly rootCertificate: Buffer;
    readonly privateKey?: Buffer;
    readonly certChain?: Buffer;
  };
}

/**
 * The etcd connection options for `cfg` and `endpoints`: `auth` for user/password (the
 * password inline or from its file), `credentials` with the CA, client key and certificate
 * read from their files when `etcdTlsCa` is set (use `https://` endpoints then). Throws
 * {@link SecurityConfigError} or {@link CredentialsFileError}.
 */
export function etcdConnectionOptions(
  cfg: SecurityConfig,
  endpoints: readonly string[],
): EtcdSecureOptions {
  check(cfg);
  const password = secret(cfg, 'etcdPassword', 'etcdPasswordFile');
  return {
    endpoints: [...endpoints],
    ...(cfg.etcdUser !== undefined
      ? { auth: { username: cfg.etcdUser, password: password ?? '' } }
      : {}),
    ...(cfg.etcdTlsCa !== undefined
      ? {
          credentials: {
            rootCertificate: readBytes('etcdTlsCa', cfg.etcdTlsCa),
            ...(cfg.etcdTlsKey !== undefined
              ? { privateKey: readBytes('etcdTlsKey', cfg.etcdTlsKey) }
              : {}),
            ...(cfg.etcdTlsCert !== undefined
              ? { certChain: readBytes('etcdTlsCert', cfg.etcdTlsCert) }
              : {}),
          },
        }
      : {}),
  };
}

/** A field name that looks like it holds a secret value (not a path to one). */
const SECRET_NAME = /(password|passwd|token|secret|seed|credential)s?$/i;

/** `scheme://user:pass@host` -> `scheme://user:***@host`; `scheme://token@host` -> `scheme://***@host`. */
function redactUrl(value: string): string {
  return value.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)([^/@\s]+)@/i,
    (_, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      return `${scheme}${colon < 0 ? '***' : `${info.slice(0, colon)}:***`}@`;
    },
  );
}

function redactValue(value: unknown): unknown {
  if (typeof value === 'string') return redactUrl(value);
  if (Array.isArray(value)) return value.map(redactValue);
  return value;
}

/**
 * A copy of `config` fit for logs and `/status`: every secret field ({@link SECRET_FIELDS},
 * and any other field named like a password, token, secret or seed) that is set becomes
 * `'***'`, and credentials inside URLs (`nats://user:pass@host`) are masked. Paths to secret
 * files are kept: they are not secrets.
 */
export function redact(config: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const isSecret = SECRET_FIELDS.includes(key) || SECRET_NAME.test(key);
    out[key] = isSecret && value !== undefined ? '***' : redactValue(value);
  }
  return out;
}
