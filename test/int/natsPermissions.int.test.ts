import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import CRC32 from 'crc-32';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNatsAdminClientTransport,
  createNatsAdminServerTransport,
} from '../../src/adapters/nats/natsAdminTransport.ts';
import {
  createNatsApiClientTransport,
  createNatsApiServerTransport,
} from '../../src/adapters/nats/natsApiTransport.ts';
import { createNatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import type { OpLogEntry } from '../../src/domain/log/entry.ts';
import { natsConnectionOptions } from '../../src/config/credentials.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';

// A real nats-server with the users and permissions of deploy/nats/auth.conf (the file the
// compose deployment uses, read as is; only the passwords are set here): the `client` user
// cannot append to the OpLog, the `master` user can, the `operator` user only reads it; the
// nodes' admin channel and the primary's announcements work.

const deployDir = fileURLToPath(new URL('../../deploy/nats/', import.meta.url));
const CLUSTER = 'main'; // the cluster auth.conf's subjects name
const SUBJECT = `understudy.${CLUSTER}.oplog`;
const STREAM = `UNDERSTUDY_${CLUSTER.toUpperCase()}_OPLOG`;
const API = `understudy.${CLUSTER}.api`;
const PASSWORDS = {
  NATS_MASTER_PASSWORD: 'master-secret',
  NATS_CLIENT_PASSWORD: 'client-secret',
  NATS_OPERATOR_PASSWORD: 'operator-secret',
};
const TIMEOUT_MS = 10_000;

let server: NatsServerHandle;
const connections: NatsConnection[] = [];

async function connectAs(
  user: string,
  password: string,
  url: string = server.url,
): Promise<NatsConnection> {
  const nc = await connect({
    servers: url,
    ...natsConnectionOptions({ natsUser: user, natsPassword: password }),
    timeout: TIMEOUT_MS,
  });
  connections.push(nc);
  return nc;
}

/** Resolves with the first permission error the server reports to `nc`. */
function nextPermissionError(nc: NatsConnection): Promise<string> {
  return (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'error' && /permission/i.test(String(status.error))) {
        return String(status.error);
      }
    }
    return 'closed';
  })();
}

async function streamMessages(nc: NatsConnection): Promise<number> {
  const jsm = await jetstreamManager(nc);
  return (await jsm.streams.info(STREAM)).state.messages;
}

/** deploy/nats/auth.conf as is, with the passwords it reads from the environment set. */
async function authConfig(): Promise<string> {
  const auth = await readFile(join(deployDir, 'auth.conf'), 'utf8');
  const passwords = Object.entries(PASSWORDS)
    .map(([name, value]) => `${name}: ${JSON.stringify(value)}`)
    .join('\n');
  return `${passwords}\n${auth}`;
}

function entry(seq: number): OpLogEntry {
  const payload = new TextEncoder().encode(`payload-${seq}`);
  const key = `key-${seq}`;
  return {
    seq,
    epoch: 1,
    ts: 1_700_000_000_000 + seq,
    op: 'PUT_END',
    key,
    payload,
    checksum: CRC32.buf(payload) >>> 0,
    prefixHash: CRC32.buf(new TextEncoder().encode(key).subarray(0, 8)) >>> 0,
  };
}

beforeAll(async () => {
  server = await startNats({ config: await authConfig() });
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
  await server[Symbol.asyncDispose]();
});

describe('NATS permissions of deploy/nats/auth.conf', () => {
  it('refuses a connection without credentials or with a wrong password', async () => {
    await expect(connect({ servers: server.url, timeout: TIMEOUT_MS })).rejects.toThrow();
    await expect(
      connect({ servers: server.url, user: 'master', pass: 'wrong', timeout: TIMEOUT_MS }),
    ).rejects.toThrow();
  });

  it('the master user creates the OpLog stream and appends to it', async () => {
    const master = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD);
    const jsm = await jetstreamManager(master);
    await jsm.streams.add({ name: STREAM, subjects: [SUBJECT] });
    const ack = await jetstream(master).publish(SUBJECT, new TextEncoder().encode('entry-1'), {
      expect: { lastSequence: 0 },
      timeout: TIMEOUT_MS,
    });
    expect(ack.seq).toBe(1);
    expect(await streamMessages(master)).toBe(1);
  });

  it('the client user cannot append: JetStream publish and plain publish are refused', async () => {
    const master = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD);
    const before = await streamMessages(master);
    const client = await connectAs('client', PASSWORDS.NATS_CLIENT_PASSWORD);

    const violation = nextPermissionError(client);
    await expect(
      jetstream(client).publish(SUBJECT, new TextEncoder().encode('forged'), {
        timeout: TIMEOUT_MS,
      }),
    ).rejects.toThrow(/permissions violation for publish/i);
    expect(await violation).toMatch(/publish/i);

    const plainViolation = nextPermissionError(client);
    client.publish(SUBJECT, new TextEncoder().encode('forged-plain'));
    await client.flush();
    expect(await plainViolation).toContain(SUBJECT);

    // Nothing reached the stream, and the master can still append where it left off.
    expect(await streamMessages(master)).toBe(before);
    const ack = await jetstream(master).publish(SUBJECT, new TextEncoder().encode('entry'), {
      expect: { lastSequence: before },
      timeout: TIMEOUT_MS,
    });
    expect(ack.seq).toBe(before + 1);
  });

  it('the client user cannot use the JetStream API (no stream info, no delete)', async () => {
    const client = await connectAs('client', PASSWORDS.NATS_CLIENT_PASSWORD);
    const violation = nextPermissionError(client);
    await expect(
      client.request(`$JS.API.STREAM.DELETE.${STREAM}`, undefined, { timeout: 2_000 }),
    ).rejects.toThrow();
    expect(await violation).toContain('$JS.API.STREAM.DELETE');
    const master = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD);
    expect(await streamMessages(master)).toBeGreaterThan(0);
  });

  it('the client user sends API requests and gets replies, but cannot serve the API', async () => {
    const master = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD);
    const sub = master.subscribe(`${API}.*`, {
      callback: (_err, msg) => {
        msg.respond(new TextEncoder().encode(`pong:${msg.subject}`));
      },
    });
    await master.flush();
    const client = await connectAs('client', PASSWORDS.NATS_CLIENT_PASSWORD);
    const reply = await client.request(`${API}.exists`, undefined, { timeout: TIMEOUT_MS });
    expect(reply.string()).toBe(`pong:${API}.exists`);

    const violation = nextPermissionError(client);
    client.subscribe(`${API}.*`, { callback: () => undefined });
    await client.flush();
    expect(await violation).toMatch(/subscription/i);
    sub.unsubscribe();
  });

  it('masters talk on the admin channel; a new primary announces itself to clients', async () => {
    const primary = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD);
    const standby = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD);
    const client = await connectAs('client', PASSWORDS.NATS_CLIENT_PASSWORD);
    const heard = new Promise<void>((resolve) => {
      createNatsApiClientTransport({ nc: client, cluster: CLUSTER }).onListening?.(resolve);
    });
    await client.flush();
    const api = await createNatsApiServerTransport({ nc: primary, cluster: CLUSTER }).listen((op) =>
      Promise.resolve(new TextEncoder().encode(`api:${op}`)),
    );
    await heard;
    const admin = await createNatsAdminServerTransport({ nc: primary, cluster: CLUSTER }).listen(
      (op) => Promise.resolve(new TextEncoder().encode(`admin:${op}`)),
    );
    const reply = await createNatsAdminClientTransport({ nc: standby, cluster: CLUSTER }).request(
      'verify',
      new Uint8Array(),
      TIMEOUT_MS,
    );
    expect(new TextDecoder().decode(reply)).toBe('admin:verify');

    // The client user has no business on the admin channel.
    const violation = nextPermissionError(client);
    client.publish(`understudy.${CLUSTER}.admin.syncStart`);
    await client.flush().catch(() => undefined);
    expect(await violation).toMatch(/publish/i);
    await admin.close();
    await api.close();
  });

  it('the operator user reads the OpLog with an ordered consumer but cannot append', async () => {
    const master = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD);
    const total = await streamMessages(master);
    const operator = await connectAs('operator', PASSWORDS.NATS_OPERATOR_PASSWORD);
    const js = jetstream(operator);
    const consumer = await js.consumers.get(STREAM);
    const read: string[] = [];
    const messages = await consumer.fetch({ max_messages: total, expires: TIMEOUT_MS });
    for await (const msg of messages) {
      read.push(msg.string());
      if (read.length === total) break;
    }
    expect(read[0]).toBe('entry-1');
    expect(read).toHaveLength(total);
    const stored = await (await jetstreamManager(operator)).streams.getMessage(STREAM, { seq: 1 });
    expect(stored?.string()).toBe('entry-1');

    const violation = nextPermissionError(operator);
    await expect(
      js.publish(SUBJECT, new TextEncoder().encode('forged'), { timeout: TIMEOUT_MS }),
    ).rejects.toThrow();
    expect(await violation).toMatch(/publish/i);
    expect(await streamMessages(master)).toBe(total);
  });
});

describe('the NATS OpLog adapter under these permissions', () => {
  it('works for the master user: creates the stream, appends, follows', async () => {
    await using own = await startNats({ config: await authConfig() });
    const master = await connectAs('master', PASSWORDS.NATS_MASTER_PASSWORD, own.url);
    const log = await createNatsOpLog({ nc: master, cluster: CLUSTER });
    try {
      expect(log.subject).toBe(SUBJECT);
      expect(log.streamName).toBe(STREAM);
      const writer = log.openWriter({ expectedLastStreamSeq: 0 });
      const ack = await writer.append([entry(1), entry(2), entry(3)]);
      expect(ack.lastSeq).toBe(3);
      await writer.close();
      expect((await log.bounds()).lastSeq).toBe(3);
      const follower = log.follow(2);
      const seen: number[] = [];
      for await (const batch of follower) {
        seen.push(...batch.entries.map((e) => e.seq));
        if (seen.at(-1) === 3) break;
      }
      follower.close();
      expect(seen).toEqual([2, 3]);
    } finally {
      await log.close();
    }

    // The client user cannot even open it: the JetStream API is closed to it.
    const client = await connectAs('client', PASSWORDS.NATS_CLIENT_PASSWORD, own.url);
    await expect(createNatsOpLog({ nc: client, cluster: CLUSTER })).rejects.toThrow();
    await client.close();
    await master.close();
  });
});

describe('deploy/nats server configs', () => {
  it('nats-server accepts nats-1..3.conf (without the 2.10-only sync_interval)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'understudy-deploy-'));
    try {
      await writeFile(join(dir, 'auth.conf'), await readFile(join(deployDir, 'auth.conf')));
      for (const n of [1, 2, 3]) {
        const config = await readFile(join(deployDir, `nats-${n}.conf`), 'utf8');
        expect(config).toMatch(/^\s*sync_interval: always$/m);
        const file = join(dir, `nats-${n}.conf`);
        // nats-server 2.9 (the one installed here) does not know sync_interval.
        await writeFile(file, config.replace(/^\s*sync_interval: always$/m, ''));
        const { stdout, stderr } = await promisify(execFile)('nats-server', ['-t', '-c', file], {
          env: { ...process.env, ...PASSWORDS },
          timeout: TIMEOUT_MS,
        });
        expect(`${stdout}${stderr}`).toContain('is valid');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
