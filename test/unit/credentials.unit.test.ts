import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/nats-core';
import type { Auth, Authenticator } from '@nats-io/nats-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { EtcdConnectionOptions } from '../../src/adapters/etcd/etcdClient.ts';
import {
  CredentialsFileError,
  SecurityConfigError,
  etcdConnectionOptions,
  natsConnectionOptions,
  oplogSigningKey,
  redact,
} from '../../src/config/credentials.ts';
import { securitySettings, validateSecurityConfig } from '../../src/config/securitySettings.ts';
import { ConfigError, loadSettings } from '../../src/config/settings.ts';

const dir = mkdtempSync(join(tmpdir(), 'understudy-creds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function authOf(options: { authenticator?: Authenticator | Authenticator[] }): Auth {
  const authenticator = options.authenticator;
  if (typeof authenticator !== 'function') throw new Error('expected one authenticator');
  return authenticator('nonce-123');
}

describe('securitySettings', () => {
  it('accepts every field from the config file and rejects empty strings', () => {
    const all = {
      natsUser: 'master',
      natsPassword: 'p',
      natsPasswordFile: '/run/secrets/p',
      natsToken: 't',
      natsTokenFile: '/t',
      natsCredsFile: '/c',
      natsNkeySeedFile: '/s',
      natsTlsCa: '/ca',
      natsTlsCert: '/cert',
      natsTlsKey: '/key',
      etcdUser: 'root',
      etcdPassword: 'e',
      etcdPasswordFile: '/e',
      etcdTlsCa: '/eca',
      etcdTlsCert: '/ecert',
      etcdTlsKey: '/ekey',
    };
    const file = (values: Record<string, unknown>) => ({ file: { path: 'c.json', values } });
    expect(loadSettings(securitySettings, file(all))).toEqual(all);
    expect(loadSettings(securitySettings, file({}))).toEqual({});
    expect(() => loadSettings(securitySettings, file({ natsUser: '' }))).toThrow(ConfigError);
  });

  it('takes secrets from the environment or the file, never from a flag', () => {
    const flags = { natsPassword: 'from-flag', natsUser: 'u' };
    expect(loadSettings(securitySettings, { flags })).toEqual({ natsUser: 'u' });
    expect(
      loadSettings(securitySettings, { flags, env: { UNDERSTUDY_NATS_PASSWORD: 'from-env' } }),
    ).toEqual({ natsUser: 'u', natsPassword: 'from-env' });
  });

  it('names contradictions without echoing secrets', () => {
    expect(validateSecurityConfig({})).toEqual([]);
    const problems = validateSecurityConfig({
      natsUser: 'u',
      natsPassword: 'hunter2',
      natsPasswordFile: '/p',
      natsToken: 'tok-secret',
      natsTlsCert: '/c',
      etcdPassword: 'etcd-secret',
      etcdTlsCert: '/c',
      etcdTlsKey: '/k',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'set natsPassword or natsPasswordFile, not both',
        'one NATS auth method at a time, got natsUser, natsToken',
        'etcdPassword needs etcdUser',
        'natsTlsCert and natsTlsKey go together',
        'etcdTlsCert needs etcdTlsCa',
      ]),
    );
    expect(() => natsConnectionOptions({ natsUser: 'u', natsToken: 'tok-secret' })).toThrow(
      SecurityConfigError,
    );
    const text = problems.join(' ');
    for (const s of ['hunter2', 'tok-secret', 'etcd-secret']) expect(text).not.toContain(s);
  });
});

describe('oplogSigningKey', () => {
  it('inline or from a file (trailing newline dropped); too short or both is refused', () => {
    expect(oplogSigningKey({})).toBeUndefined();
    const key = 'sixteen chars ok';
    expect(Buffer.from(oplogSigningKey({ oplogKey: key })!).toString()).toBe(key);
    const path = file('oplog.key', `${key}\n`);
    expect(oplogSigningKey({ oplogKeyFile: path })).toEqual(oplogSigningKey({ oplogKey: key }));
    expect(() => oplogSigningKey({ oplogKey: 'short' })).toThrow(SecurityConfigError);
    expect(validateSecurityConfig({ oplogKey: key, oplogKeyFile: path })).toEqual([
      'set oplogKey or oplogKeyFile, not both',
    ]);
  });
});

describe('natsConnectionOptions', () => {
  it('is empty without security settings', () => {
    expect(natsConnectionOptions({})).toEqual({});
  });

  it('user and password, inline or from a file (trailing newline dropped)', () => {
    expect(natsConnectionOptions({ natsUser: 'master', natsPassword: 's3cret' })).toEqual({
      user: 'master',
      pass: 's3cret',
    });
    const path = file('nats-password', 'from-file\n');
    expect(natsConnectionOptions({ natsUser: 'master', natsPasswordFile: path })).toEqual({
      user: 'master',
      pass: 'from-file',
    });
  });

  it('token, inline or from a file', () => {
    expect(natsConnectionOptions({ natsToken: 'tok' })).toEqual({ token: 'tok' });
    expect(natsConnectionOptions({ natsTokenFile: file('token', 'tok2\r\n') })).toEqual({
      token: 'tok2',
    });
  });

  it('an nkey seed file signs the server nonce with that key', () => {
    const user = nkeys.createUser();
    const path = file('user.nk', `${new TextDecoder().decode(user.getSeed())}\n`);
    const auth = authOf(natsConnectionOptions({ natsNkeySeedFile: path })) as {
      nkey: string;
      sig: string;
    };
    expect(auth.nkey).toBe(user.getPublicKey());
    const sig = Uint8Array.from(Buffer.from(auth.sig, 'base64url'));
    expect(user.verify(new TextEncoder().encode('nonce-123'), sig)).toBe(true);
  });

  it('a creds file gives the JWT and signs with its seed', () => {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const jwt = 'eyJhbGciOiJlZDI1NTE5In0.e30.c2ln'; // any JWT-shaped text: the server checks it
    const creds = [
      '-----BEGIN NATS USER JWT-----',
      jwt,
      '------END NATS USER JWT------',
      '',
      '-----BEGIN USER NKEY SEED-----',
      seed,
      '------END USER NKEY SEED------',
      '',
    ].join('\n');
    const auth = authOf(natsConnectionOptions({ natsCredsFile: file('user.creds', creds) })) as {
      jwt: string;
      nkey: string;
    };
    expect(auth.jwt).toBe(jwt);
    expect(auth.nkey).toBe(user.getPublicKey());
  });

  it('TLS files are passed by path', () => {
    expect(
      natsConnectionOptions({ natsTlsCa: '/ca.pem', natsTlsCert: '/c.pem', natsTlsKey: '/k.pem' }),
    ).toEqual({ tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' } });
    expect(natsConnectionOptions({ natsTlsCa: '/ca.pem' })).toEqual({ tls: { caFile: '/ca.pem' } });
  });

  it('a missing secret file is a typed error naming the field and path', () => {
    const missing = join(dir, 'nope');
    const attempt = (): unknown =>
      natsConnectionOptions({ natsUser: 'u', natsPasswordFile: missing });
    expect(attempt).toThrow(CredentialsFileError);
    expect(attempt).toThrow(`natsPasswordFile: cannot read ${missing}`);
    expect(() => natsConnectionOptions({ natsCredsFile: missing })).toThrow(CredentialsFileError);
  });
});

describe('etcdConnectionOptions', () => {
  it('endpoints only without security settings', () => {
    // What it returns is what the etcd adapters take.
    const options: EtcdConnectionOptions = etcdConnectionOptions({}, ['http://127.0.0.1:2379']);
    expect(options).toEqual({
      endpoints: ['http://127.0.0.1:2379'],
    });
  });

  it('user/password (from a file) and TLS files read into buffers', () => {
    const ca = file('ca.pem', 'CA PEM');
    const cert = file('cert.pem', 'CERT PEM');
    const key = file('key.pem', 'KEY PEM');
    const options = etcdConnectionOptions(
      {
        etcdUser: 'root',
        etcdPasswordFile: file('etcd-password', 'pw\n'),
        etcdTlsCa: ca,
        etcdTlsCert: cert,
        etcdTlsKey: key,
      },
      ['https://etcd:2379'],
    );
    expect(options.endpoints).toEqual(['https://etcd:2379']);
    expect(options.auth).toEqual({ username: 'root', password: 'pw' });
    expect(options.credentials?.rootCertificate.toString()).toBe('CA PEM');
    expect(options.credentials?.certChain?.toString()).toBe('CERT PEM');
    expect(options.credentials?.privateKey?.toString()).toBe('KEY PEM');
  });

  it('refuses a client certificate without a CA', () => {
    expect(() =>
      etcdConnectionOptions({ etcdTlsCert: '/c', etcdTlsKey: '/k' }, ['https://e:2379']),
    ).toThrow(SecurityConfigError);
  });
});

describe('redact', () => {
  it('masks every secret field and credentials in URLs, keeps the rest', () => {
    const config = {
      id: 'node-1',
      natsUser: 'master',
      natsPassword: 'hunter2',
      natsToken: 'tok',
      etcdPassword: 'etcd-pw',
      natsPasswordFile: '/run/secrets/nats',
      nats: ['nats://master:hunter2@nats-1:4222', 'nats://tok@nats-2:4222', 'nats://nats-3:4222'],
      etcd: 'http://root:etcd-pw@etcd:2379',
      apiSecret: 'x',
      leaseTtl: 5000,
      etcdUser: undefined,
    };
    const shown = redact(config);
    expect(shown).toEqual({
      id: 'node-1',
      natsUser: 'master',
      natsPassword: '***',
      natsToken: '***',
      etcdPassword: '***',
      natsPasswordFile: '/run/secrets/nats',
      nats: ['nats://master:***@nats-1:4222', 'nats://***@nats-2:4222', 'nats://nats-3:4222'],
      etcd: 'http://root:***@etcd:2379',
      apiSecret: '***',
      leaseTtl: 5000,
      etcdUser: undefined,
    });
    const json = JSON.stringify(shown);
    for (const s of ['hunter2', 'etcd-pw', ':tok', '//tok']) expect(json).not.toContain(s);
    // The input is not changed.
    expect(config.natsPassword).toBe('hunter2');
  });
});
