import { decodeJson, encodeJson } from '../../src/api/wire.ts';
import type { ApiClientTransport } from '../../src/ports/apiTransport.ts';

/**
 * A client transport whose requests lose their `session` (and a `writeBatch`'s items their
 * `requestNo`) on the way: the nodes see writes
 * without a client session, so nothing is deduplicated. The broken variant "no session table"
 * of the simulation, and the baseline of the sessions' cost in the write bench.
 */
export function withoutSessions(transport: ApiClientTransport): ApiClientTransport {
  return {
    request: (op, body, timeoutMs) => {
      const value = decodeJson(body) as Record<string, unknown>;
      delete value['session'];
      // A coalesced request's items carry their own request numbers.
      if (op === 'writeBatch' && Array.isArray(value['items']))
        for (const item of value['items'] as Record<string, unknown>[]) delete item['requestNo'];
      return transport.request(op, encodeJson(value), timeoutMs);
    },
    ...(transport.onListening === undefined
      ? {}
      : { onListening: (listener: () => void) => transport.onListening!(listener) }),
    close: () => transport.close(),
  };
}
