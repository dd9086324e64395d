import { createHmac, timingSafeEqual } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { CodecError, decodeBatch } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';

/** The header of an OpLog message that carries its batch's HMAC-SHA256 (base64). */
export const SIGNATURE_HEADER = 'Understudy-Batch-Hmac';

/**
 * Signs and checks OpLog batches with a cluster key: a message counts as a batch of entries
 * only when it carries the HMAC-SHA256 of its bytes under that key, so a node can tell a
 * primary's message from anything else published to the OpLog subject, even where the NATS
 * permissions let others publish. Without a key nothing is signed or checked.
 */
export class BatchSignature {
  constructor(private readonly key: Uint8Array | undefined) {}

  /** The headers a writer adds to a message of `bytes` (undefined without a key). */
  headersFor(bytes: Uint8Array): MsgHdrs | undefined {
    if (this.key === undefined) return undefined;
    const h = natsHeaders();
    h.set(SIGNATURE_HEADER, this.#mac(bytes).toString('base64'));
    return h;
  }

  /**
   * The entries of a stored message. Throws {@link CodecError} when it is no batch, or (with a
   * key) when its signature is missing or wrong: no part of the log either way.
   */
  decode(bytes: Uint8Array, headers: MsgHdrs | undefined): OpLogEntry[] {
    if (this.key !== undefined) {
      const claimed = headers?.get(SIGNATURE_HEADER) ?? '';
      if (claimed === '') throw new CodecError('signature', 'the batch is not signed');
      const expected = this.#mac(bytes);
      const given = Buffer.from(claimed, 'base64');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new CodecError('signature', 'the batch signature does not match the cluster key');
      }
    }
    return decodeBatch(bytes);
  }

  #mac(bytes: Uint8Array): Buffer {
    return createHmac('sha256', this.key as Uint8Array)
      .update(bytes)
      .digest();
  }
}
