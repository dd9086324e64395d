// What the checker keeps of the answers nodes give: acknowledged writes and leased reads.
import { decodeJson } from '../../src/api/wire.ts';
import { OP_OF } from '../../src/domain/decide/sessions.ts';

/** The log op of each write call of the API (the session table's map). */
export const WRITE_OPS: Readonly<Record<string, string>> = OP_OF;

/** A write a node acknowledged. */
export interface AckedWrite {
  readonly node: string;
  readonly epoch: number;
  readonly op: string;
  readonly key: string;
  readonly seq: number;
}

/** A get a node answered: the key was read-leased by that primary. */
export interface LeasedRead {
  readonly node: string;
  readonly epoch: number;
  readonly key: string;
}

/** The object key (or segment id) a request of `op` names. */
export function keyOf(op: string, body: Uint8Array): string {
  const value = decodeJson(body) as Record<string, unknown>;
  const key = op === 'mountSegment' || op === 'unmountSegment' ? value['segmentId'] : value['key'];
  return typeof key === 'string' ? key : '';
}
