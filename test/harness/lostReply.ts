import { TransportTimeoutError, type ApiClientTransport } from '../../src/ports/apiTransport.ts';
import { deferred, type Deferred } from '../../src/node/deferred.ts';

/** A request whose reply was lost on the way: it was served, the client has not heard. */
export interface LostReply {
  /** Resolves with the reply the server sent (which the client never sees). */
  readonly served: Promise<Uint8Array>;
  /** Lets the client hear a timeout now, so it retries (same session and request number). */
  release(): void;
}

/**
 * A client transport that loses the reply of a request when told to (`loseNext`): the request
 * reaches the server and is served; the reply is kept from the client, which then hears a
 * timeout, but only when the test says so (`release`), so the test decides what happens
 * between the first attempt and the retry (a wall clock stepped, a primary killed).
 */
export function losingReplies(
  transport: ApiClientTransport,
): ApiClientTransport & { loseNext(): LostReply } {
  let armed: { served: Deferred<Uint8Array>; released: Deferred<void> } | undefined;
  return {
    loseNext() {
      const lost = { served: deferred<Uint8Array>(), released: deferred<void>() };
      armed = lost;
      return { served: lost.served.promise, release: () => lost.released.resolve() };
    },
    async request(op, body, timeoutMs) {
      const lost = armed;
      armed = undefined;
      if (lost === undefined) return transport.request(op, body, timeoutMs);
      try {
        lost.served.resolve(await transport.request(op, body, timeoutMs));
      } catch (err) {
        // Not served after all: the test hears why, the client its failure.
        lost.served.reject(err);
        throw err;
      }
      await lost.released.promise;
      throw new TransportTimeoutError(op, timeoutMs);
    },
    ...(transport.onListening === undefined
      ? {}
      : { onListening: (listener: () => void) => transport.onListening!(listener) }),
    ...(transport.notPrimary === undefined ? {} : { notPrimary: () => transport.notPrimary!() }),
    close: () => transport.close(),
  };
}
