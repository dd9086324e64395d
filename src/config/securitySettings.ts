/**
 * The security settings of the `understudy` commands (NATS and etcd credentials and TLS) and
 * their cross-field rules. A secret comes either inline (`natsPassword`, from the environment
 * or the config file, never a flag) or from a file (`natsPasswordFile`, e.g. a Docker secret);
 * `*File` settings are paths, read when the connection options are built (credentials.ts).
 */
import { filePath, text } from './settingTypes.ts';
import { optional, secret, type SettingsOf } from './settings.ts';

export const securitySettings = {
  natsUser: optional(text, 'NATS user (user/password auth)'),
  natsPassword: secret('NATS password'),
  natsPasswordFile: optional(filePath, 'file holding the NATS password'),
  natsToken: secret('NATS token'),
  natsTokenFile: optional(filePath, 'file holding the NATS token'),
  natsCredsFile: optional(filePath, 'NATS credentials file (user JWT + nkey seed)'),
  natsNkeySeedFile: optional(filePath, 'file holding a NATS nkey user seed (SU...)'),
  natsTlsCa: optional(filePath, 'CA certificate (PEM) for NATS TLS'),
  natsTlsCert: optional(filePath, 'client certificate (PEM) for NATS TLS'),
  natsTlsKey: optional(filePath, 'client key (PEM) for NATS TLS'),
  etcdUser: optional(text, 'etcd user (user/password auth)'),
  etcdPassword: secret('etcd password'),
  etcdPasswordFile: optional(filePath, 'file holding the etcd password'),
  etcdTlsCa: optional(filePath, 'CA certificate (PEM) for etcd TLS; use https:// endpoints'),
  etcdTlsCert: optional(filePath, 'client certificate (PEM) for etcd TLS'),
  etcdTlsKey: optional(filePath, 'client key (PEM) for etcd TLS'),
  oplogKey: secret(
    'OpLog signing key (the same on every node): each batch carries an HMAC-SHA256 under it, and a node folds no message without a valid one',
  ),
  oplogKeyFile: optional(filePath, 'file holding the OpLog signing key'),
} as const;

/** The NATS ones (for the commands that read the OpLog). */
export const NATS_SECURITY_KEYS = [
  'natsUser',
  'natsPassword',
  'natsPasswordFile',
  'natsToken',
  'natsTokenFile',
  'natsCredsFile',
  'natsNkeySeedFile',
  'natsTlsCa',
  'natsTlsCert',
  'natsTlsKey',
] as const satisfies readonly (keyof typeof securitySettings)[];

/** The etcd ones (for the commands that read the member registry). */
export const ETCD_SECURITY_KEYS = [
  'etcdUser',
  'etcdPassword',
  'etcdPasswordFile',
  'etcdTlsCa',
  'etcdTlsCert',
  'etcdTlsKey',
] as const satisfies readonly (keyof typeof securitySettings)[];

/** The security settings as loaded (every one optional). */
export type SecurityConfig = SettingsOf<typeof securitySettings>;

/** Settings that hold a secret value: never logged, shown as `***`. */
export const SECRET_FIELDS: readonly string[] = Object.entries(securitySettings)
  .filter(([, s]) => s.secret)
  .map(([key]) => key);

/**
 * Every contradiction in `cfg`, one message per problem naming the settings (empty when they
 * are consistent): at most one NATS auth method (user/password, token, creds file, nkey
 * seed); a secret inline or from a file, not both; a password needs a user; a TLS certificate
 * needs its key and the other way round; etcd TLS needs a CA.
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
  both('oplogKey', 'oplogKeyFile');
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
