// Credentials and TLS for NATS and etcd: how the security settings (securitySettings.ts) become
// connection options, and how a config is shown without its secrets.
import { readFileSync } from 'node:fs';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { SECRET_FIELDS, validateSecurityConfig, type SecurityConfig } from './securitySettings.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** The security settings contradict each other (two auth methods, a key without a cert...). */
export class SecurityConfigError extends UnderstudyError {
  override readonly name = 'SecurityConfigError';
  readonly code = 'SECURITY_CONFIG';
  constructor(
    /** Every problem found, each naming its fields. */
    readonly problems: readonly string[],
  ) {
    super(`bad security configuration: ${problems.join('; ')}`);
  }
}

/** A credentials or certificate file could not be read (its content is never in the message). */
export class CredentialsFileError extends UnderstudyError {
  override readonly name = 'CredentialsFileError';
  readonly code = 'CREDENTIALS_FILE';
  constructor(
    /** The setting that named the file (`natsPasswordFile`, ...). */
    readonly field: string,
    readonly path: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: cannot read ${path}`, options);
  }
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

/** The OpLog signing key (`oplogKey`, or the content of `oplogKeyFile`), or undefined. */
export function oplogSigningKey(cfg: SecurityConfig): Uint8Array | undefined {
  const key =
    cfg.oplogKeyFile !== undefined ? readSecret('oplogKeyFile', cfg.oplogKeyFile) : cfg.oplogKey;
  if (key === undefined) return undefined;
  if (key.length < 16) {
    throw new SecurityConfigError([`the OpLog signing key must be at least 16 characters`]);
  }
  return Buffer.from(key, 'utf8');
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
