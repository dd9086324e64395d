// The OpLog key id: what names a key in every signed batch, in etcd and in the start-up refusal,
// without giving the key away.
import { describe, expect, it } from 'vitest';
import {
  BatchSignature,
  KEY_ID_HEADER,
  SIGNATURE_HEADER,
  oplogKeyId,
} from '../../src/adapters/nats/batchSignature.ts';
import { CodecError, encodeBatch } from '../../src/domain/log/codec.ts';
import { toEntry } from '../../src/domain/log/eventCodec.ts';
import { OplogKeyMismatchError, checkOplogKeyId } from '../../src/node/oplogKeyCheck.ts';

const KEY = Buffer.from('a cluster key of this test, 32 B');
const OTHER = Buffer.from('another key, also 32 bytes long!');

const batch = encodeBatch([
  toEntry({ seq: 1, epoch: 7, ts: 1, event: { op: 'EPOCH', epoch: 7, nodeId: 'n1' } }),
]);

describe('oplogKeyId', () => {
  it('is the first 8 bytes of HMAC-SHA256(key, "understudy-key-id") in hex: fixed for a key, different for another', () => {
    // Pinned: nodes of different versions must agree on it.
    expect(oplogKeyId(KEY)).toBe('3141d37d775befbc');
    expect(oplogKeyId(OTHER)).toMatch(/^[0-9a-f]{16}$/);
    expect(oplogKeyId(OTHER)).not.toBe(oplogKeyId(KEY));
    expect(oplogKeyId(Buffer.from(KEY))).toBe(oplogKeyId(KEY));
  });

  it('says nothing of the key: not a part of it, in hex or text', () => {
    const id = oplogKeyId(KEY);
    expect(KEY.toString('hex')).not.toContain(id);
    expect(KEY.toString('utf8')).not.toContain(id);
  });
});

describe('BatchSignature and the key id', () => {
  it('every signed batch names its key id in a header; without a key there are no headers', () => {
    const signature = new BatchSignature(KEY);
    expect(signature.keyId).toBe(oplogKeyId(KEY));
    const headers = signature.headersFor(batch)!;
    expect(headers.get(KEY_ID_HEADER)).toBe(oplogKeyId(KEY));
    expect(headers.get(SIGNATURE_HEADER)).not.toBe('');
    expect(signature.decode(batch, headers).map((e) => e.seq)).toEqual([1]);
    const unsigned = new BatchSignature(undefined);
    expect(unsigned.keyId).toBeUndefined();
    expect(unsigned.headersFor(batch)).toBeUndefined();
  });

  it('a batch signed under another key is refused naming both key ids', () => {
    const theirs = new BatchSignature(OTHER).headersFor(batch);
    const decode = (): unknown => new BatchSignature(KEY).decode(batch, theirs);
    expect(decode).toThrow(CodecError);
    expect(decode).toThrow(
      `the batch is signed under key id ${oplogKeyId(OTHER)}, not this node's ${oplogKeyId(KEY)}`,
    );
  });
});

describe('checkOplogKeyId (start-up)', () => {
  const at = '/understudy/c1/oplog-key-id';
  it("passes the cluster's key id, and no key on an unsigned cluster", () => {
    expect(() => checkOplogKeyId('c1', oplogKeyId(KEY), oplogKeyId(KEY), at)).not.toThrow();
    expect(() => checkOplogKeyId('c1', undefined, 'none', at)).not.toThrow();
  });

  it('refuses another key, a key on an unsigned cluster and no key on a signed one, naming the setting and both key ids', () => {
    const cases: Array<[string | undefined, string]> = [
      [oplogKeyId(OTHER), oplogKeyId(KEY)],
      [oplogKeyId(KEY), 'none'],
      [undefined, oplogKeyId(KEY)],
    ];
    for (const [mine, cluster] of cases) {
      let thrown: unknown;
      try {
        checkOplogKeyId('c1', mine, cluster, at);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(OplogKeyMismatchError);
      const err = thrown as OplogKeyMismatchError;
      expect(err.nodeKeyId).toBe(mine ?? 'none');
      expect(err.clusterKeyId).toBe(cluster);
      expect(err.message).toContain('--oplog-key-file');
      expect(err.message).toContain('UNDERSTUDY_OPLOG_KEY');
      expect(err.message).toContain(`key id ${cluster}`);
      if (mine !== undefined) expect(err.message).toContain(`key id ${mine}`);
      expect(err.message).toContain(at);
      expect(err.message).not.toContain(KEY.toString());
    }
  });
});
