import { createHmac, timingSafeEqual } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { CodecError, decodeBatch } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';

/** The header of an OpLog message that carries its batch's HMAC-SHA256 (base64). */
export const SIGNATURE_HEADER = 'Understudy-Batch-Hmac';

/** The header of a signed OpLog message that names the key it is signed under ({@link oplogKeyId}). */
export const KEY_ID_HEADER = 'Understudy-Key-Id';

/**
 * The id of an OpLog key: the first 8 bytes, in hex, of HMAC-SHA256(key, "understudy-key-id").
 * It tells keys apart (in logs, in `/status`, in every signed batch and in the cluster's record
 * in etcd) and says nothing of the key itself.
 */
export function oplogKeyId(key: Uint8Array): string {
  return createHmac('sha256', key)
    .update('understudy-key-id')
    .digest()
    .subarray(0, 8)
    .toString('hex');
}

/** A batch that says it is signed under another key (by its id): no part of the log for this node. */
export class OtherKeyError extends CodecError {
  constructor(
    /** The key id the message names. */
    readonly signedUnder: string,
    /** This node's key id. */
    readonly keyId: string,
  ) {
    super('signature', `the batch is signed under key id ${signedUnder}, not this node's ${keyId}`);
  }
}

/**
 * Signs and checks OpLog batches with a cluster key: a message counts as a batch of entries
 * only when it carries the HMAC-SHA256 of its bytes under that key, so a node can tell a
 * primary's message from anything else published to the OpLog subject, even where the NATS
 * permissions let others publish. Without a key nothing is signed or checked.
 */
export class BatchSignature {
  /** The id of the key ({@link oplogKeyId}); undefined without a key. */
  readonly keyId: string | undefined;

  constructor(private readonly key: Uint8Array | undefined) {
    this.keyId = key === undefined ? undefined : oplogKeyId(key);
  }

  /** The headers a writer adds to a message of `bytes` (undefined without a key). */
  headersFor(bytes: Uint8Array): MsgHdrs | undefined {
    if (this.key === undefined || this.keyId === undefined) return undefined;
    const h = natsHeaders();
    h.set(SIGNATURE_HEADER, this.#mac(bytes).toString('base64'));
    h.set(KEY_ID_HEADER, this.keyId);
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
        const signedUnder = headers?.get(KEY_ID_HEADER) ?? '';
        if (signedUnder !== '' && signedUnder !== this.keyId) {
          throw new OtherKeyError(signedUnder, this.keyId ?? '');
        }
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
