import { describe, expect, it } from 'vitest';
import { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import {
  NoRespondersError,
  RequestTooLargeError,
  TransportClosedError,
  TransportTimeoutError,
} from '../../src/ports/apiTransport.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

describe('MemoryApiBus', () => {
  it('delivers requests to the one listener of the cluster, and nowhere else', async () => {
    const bus = new MemoryApiBus();
    const seen: string[] = [];
    const listener = await bus.serverTransport('a').listen((op, body) => {
      seen.push(`${op}:${text(body)}`);
      return Promise.resolve(bytes(`re:${op}`));
    });
    await expect(
      bus.serverTransport('a').listen(() => Promise.resolve(new Uint8Array())),
    ).rejects.toThrow(/already has an API listener/);
    expect(text(await bus.clientTransport('a').request('get', bytes('x'), 1000))).toBe('re:get');
    await expect(bus.clientTransport('b').request('get', bytes('x'), 1000)).rejects.toBeInstanceOf(
      NoRespondersError,
    );
    expect(seen).toEqual(['get:x']);
    await listener.close();
    expect(bus.hasListener('a')).toBe(false);
    await expect(bus.clientTransport('a').request('get', bytes('x'), 1000)).rejects.toBeInstanceOf(
      NoRespondersError,
    );
    expect(bus.requestCount).toBe(3);
  });

  it('close lets taken requests reply, then frees the cluster for the next listener', async () => {
    const bus = new MemoryApiBus();
    let release: () => void = () => undefined;
    const listener = await bus
      .serverTransport('a')
      .listen(() => new Promise((resolve) => (release = () => resolve(bytes('late')))));
    const reply = bus.clientTransport('a').request('get', bytes(''), 10_000);
    await new Promise((r) => setImmediate(r));
    const closing = listener.close();
    release();
    await closing;
    expect(text(await reply)).toBe('late');
    await bus.serverTransport('a').listen(() => Promise.resolve(bytes('next')));
    expect(text(await bus.clientTransport('a').request('get', bytes(''), 1000))).toBe('next');
  });

  it('drops and delays replies as the hook says; a dropped reply times out', async () => {
    const bus = new MemoryApiBus({
      replyFate: ({ n }) =>
        n === 1 ? { kind: 'drop' } : n === 2 ? { kind: 'delay', ms: 5 } : { kind: 'deliver' },
    });
    let handled = 0;
    await bus.serverTransport('a').listen(() => {
      handled++;
      return Promise.resolve(bytes('ok'));
    });
    const client = bus.clientTransport('a');
    await expect(client.request('get', bytes(''), 50)).rejects.toBeInstanceOf(
      TransportTimeoutError,
    );
    expect(handled).toBe(1); // the request was served: only the reply was lost
    expect(text(await client.request('get', bytes(''), 5000))).toBe('ok');
    bus.setReplyFate(() => ({ kind: 'drop' }));
    await expect(client.request('get', bytes(''), 20)).rejects.toBeInstanceOf(
      TransportTimeoutError,
    );
  });

  it('refuses oversize requests and requests after close', async () => {
    const bus = new MemoryApiBus({ maxPayload: 4 });
    await bus.serverTransport('a').listen(() => Promise.resolve(bytes('ok')));
    const client = bus.clientTransport('a');
    await expect(client.request('get', bytes('12345'), 1000)).rejects.toBeInstanceOf(
      RequestTooLargeError,
    );
    await client.close();
    await expect(client.request('get', bytes('1'), 1000)).rejects.toBeInstanceOf(
      TransportClosedError,
    );
  });
});
