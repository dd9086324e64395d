import { decodeJson, encodeJson } from '../../src/api/wire.ts';
import type { ApiClientTransport } from '../../src/ports/apiTransport.ts';

/**
 * A client transport whose requests lose their `session` on the way: the nodes see writes
 * without a client session, so nothing is deduplicated. The broken variant "no session table"
 * of the simulation, and the baseline of the sessions' cost in the write bench.
 */
export function withoutSessions(transport: ApiClientTransport): ApiClientTransport {
  return {
    request: (op, body, timeoutMs) => {
      const value = decodeJson(body) as Record<string, unknown>;
      delete value['session'];
      return transport.request(op, encodeJson(value), timeoutMs);
    },
    ...(transport.onListening === undefined
      ? {}
      : { onListening: (listener: () => void) => transport.onListening!(listener) }),
    close: () => transport.close(),
  };
}
