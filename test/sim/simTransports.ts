// How a simulated node reaches the API and admin buses: as a process would, silent while it is
// down or cut off, holding requests while it is paused.
import type { MemoryApiBus } from '../../src/adapters/memory/memoryApiTransport.ts';
import {
  TransportTimeoutError,
  type ApiClientTransport,
  type ApiRequestHandler,
  type ApiServerTransport,
} from '../../src/ports/apiTransport.ts';
import type { NodeSlot } from './nodeSlot.ts';
import { SIM_CLUSTER } from './simSettings.ts';

/**
 * A server transport on `bus` for `slot`'s `incarnation`, as a process would serve it: a
 * request reaching a dead incarnation, or one `silent()` says cannot be reached, gets no
 * answer; one reaching a paused node waits for its resume; an answer produced after the
 * incarnation died is lost (a killed process sends nothing). `onServe`, called as a request
 * is served, may return what to do with its answer.
 */
export function incarnationServer(
  bus: MemoryApiBus,
  slot: NodeSlot,
  incarnation: number,
  silent: () => boolean,
  onServe?: (op: string, body: Uint8Array) => (reply: Uint8Array) => void,
): ApiServerTransport {
  const inner = bus.serverTransport(SIM_CLUSTER);
  const dead = (): boolean => slot.crashed || slot.incarnation !== incarnation;
  return {
    listen: (handler, options) => {
      const wrapped: ApiRequestHandler = (op, body) => {
        if (dead() || silent()) return new Promise(() => undefined);
        const serve = (): Promise<Uint8Array> => {
          const answered = onServe?.(op, body);
          return handler(op, body).then((reply) => {
            if (dead()) return new Promise<Uint8Array>(() => undefined);
            answered?.(reply);
            return reply;
          });
        };
        if (!slot.paused) return serve();
        return new Promise((resolve, reject) => {
          slot.held.push(() => {
            serve().then(resolve, reject);
          });
        });
      };
      return inner.listen(wrapped, options);
    },
  };
}

/** The admin client of `slot` on `bus`: a request from a node cut off from NATS gets no answer. */
export function adminClientFor(bus: MemoryApiBus, slot: NodeSlot): ApiClientTransport {
  const inner = bus.clientTransport(SIM_CLUSTER);
  return {
    request: (op, body, timeoutMs) => {
      if (!slot.natsCut) return inner.request(op, body, timeoutMs);
      return new Promise((_resolve, reject) => {
        slot.clock.setTimeout(() => reject(new TransportTimeoutError(op, timeoutMs)), timeoutMs);
      });
    },
    close: () => inner.close(),
  };
}
