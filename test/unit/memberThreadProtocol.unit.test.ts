// A group member in a worker thread reports its start-up failure and its refusal across the
// thread boundary: the node command tells the errors apart by class (exit 2 for a setting to
// fix, 1 otherwise), so they must arrive as the same class with the same fields.
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/settings.ts';
import { GroupCountMismatchError } from '../../src/node/groupCountCheck.ts';
import {
  fromThreadError,
  toThreadError,
  type ThreadError,
} from '../../src/process/memberThreadProtocol.ts';

/** `err` as the main thread gets it: through a real message port (structured clone). */
async function across(err: unknown): Promise<Error> {
  const { port1, port2 } = new MessageChannel();
  const received = new Promise<ThreadError>((resolve) => port2.once('message', resolve));
  port1.postMessage(toThreadError(err));
  const message = await received;
  port1.close();
  return fromThreadError(message);
}

describe('errors across the member thread boundary', () => {
  it('a known class arrives as that class, with its fields and message', async () => {
    const sent = new GroupCountMismatchError('main', 2, 4, '/understudy/main/groups');
    const got = await across(sent);
    expect(got).toBeInstanceOf(GroupCountMismatchError);
    expect(got.message).toBe(sent.message);
    expect(got).toMatchObject({ cluster: 'main', nodeGroups: 2, clusterGroups: 4 });
    expect(got.name).toBe('GroupCountMismatchError');
  });

  it('a subclass of a known class arrives as the known class it extends', async () => {
    class StreamSettingsError extends ConfigError {}
    const got = await across(new StreamSettingsError(['the stream refused max_age']));
    expect(got).toBeInstanceOf(ConfigError);
    expect(got.message).toBe('bad configuration: the stream refused max_age');
  });

  it('anything else arrives as an Error with the same message and stack', async () => {
    const sent = new TypeError('boom');
    const got = await across(sent);
    expect(got).toBeInstanceOf(Error);
    expect(got).not.toBeInstanceOf(ConfigError);
    expect(got.message).toBe('boom');
    expect(got.stack).toBe(sent.stack);
    expect((await across('not an error')).message).toBe('not an error');
  });
});
