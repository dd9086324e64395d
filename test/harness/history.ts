/**
 * Client histories for the linearizability checker: every call a test's clients make, with its
 * invocation and return time on one clock and its output (or an unknown outcome), and the check
 * of a whole history against the understudy model, key by key.
 */
import { ApiError, type UnderstudyClient } from '../../src/client/client.ts';
import { checkPartitions, type CheckOptions, type PartitionFailure } from './linearizability.ts';
import {
  partitionByKey,
  understudyModel,
  type ApiInput,
  type ApiOperation,
  type ApiOutput,
  type PlacedReplica,
} from './understudyModel.ts';

/**
 * Refusals that say the call did not take effect. Anything else that ends a call (a retryable
 * code after the client's deadline, `REQUEST_EXPIRED`, `CLOSED`, `INTERNAL`) leaves its outcome
 * unknown: an earlier attempt may have been applied.
 */
const DEFINITE_CODES = new Set([
  'INVALID_ARGUMENT',
  'OBJECT_EXISTS',
  'OBJECT_NOT_FOUND',
  'SEGMENT_EXISTS',
  'SEGMENT_NOT_FOUND',
  'NO_SPACE',
  'NOT_ENOUGH_NODES',
  'INVALID_STATE',
  'LEASED',
  'BAD_REQUEST',
  'REQUEST_TOO_LARGE',
]);

function replicasOf(value: unknown): PlacedReplica[] {
  return (value as PlacedReplica[]).map((r) => ({
    segmentId: r.segmentId,
    nodeId: r.nodeId,
    offset: r.offset,
    length: r.length,
    status: r.status,
  }));
}

/** The model's output for what a client call resolved with. */
function outputOf(input: ApiInput, result: unknown): ApiOutput {
  const r = result as Record<string, unknown>;
  switch (input.op) {
    case 'putStart':
      return { ok: true, seq: r['seq'] as number, replicas: replicasOf(r['replicas']) };
    case 'get':
      return {
        ok: true,
        record: {
          size: r['size'] as number,
          replicas: replicasOf(r['replicas']),
          lastSeq: r['lastSeq'] as number,
        },
      };
    case 'exists':
      return { ok: true, exists: result as boolean };
    default:
      return { ok: true, seq: r['seq'] as number };
  }
}

/** The call `input` stands for, on `client`. */
function invoke(client: UnderstudyClient, input: ApiInput): Promise<unknown> {
  switch (input.op) {
    case 'putStart':
      return client.putStart(input.key, input.size, input.replicaNum);
    case 'putEnd':
      return client.putEnd(input.key);
    case 'putRevoke':
      return client.putRevoke(input.key);
    case 'remove':
      return client.remove(input.key);
    case 'get':
      return client.get(input.key);
    case 'exists':
      return client.exists(input.key);
    case 'mountSegment':
      return client.mountSegment(input.segmentId, input.nodeId, input.size);
    case 'unmountSegment':
      return client.unmountSegment(input.segmentId);
    case 'evict':
      throw new TypeError("evictions are the primary's, not a client call");
  }
}

/** Records every call made through it. `now` is the clock of invocations and returns. */
export class HistoryRecorder {
  readonly ops: ApiOperation[] = [];
  /** Calls not answered yet. */
  #open = 0;

  constructor(private readonly now: () => number) {}

  /** Calls still waiting for their answer. */
  get open(): number {
    return this.#open;
  }

  /**
   * Makes the call `input` on `client` (numbered `clientId` in reports) and records it;
   * resolves with the model's output (undefined for an unknown outcome), never rejects.
   */
  async call(
    client: UnderstudyClient,
    clientId: number,
    input: ApiInput,
  ): Promise<ApiOutput | undefined> {
    const call = this.now();
    this.#open++;
    let output: ApiOutput | undefined;
    try {
      output = outputOf(input, await invoke(client, input));
    } catch (err) {
      output =
        err instanceof ApiError && DEFINITE_CODES.has(err.code)
          ? { ok: false, code: err.code }
          : undefined;
    } finally {
      this.#open--;
    }
    this.ops.push({
      client: clientId,
      input,
      call,
      return: output === undefined ? Infinity : this.now(),
      output,
    });
    return output;
  }

  /** Adds an operation the test knows of otherwise (an eviction from the log). */
  add(op: ApiOperation): void {
    this.ops.push(op);
  }
}

/** The parts of `ops` that are not linearizable (none: the history is). */
export function checkHistory(
  ops: readonly ApiOperation[],
  options?: CheckOptions,
): PartitionFailure<ApiInput, ApiOutput>[] {
  return checkPartitions(understudyModel, partitionByKey(ops), options);
}

/** A readable report of failures: each part with its operations ('!' marks those left over). */
export function formatFailures(failures: readonly PartitionFailure<ApiInput, ApiOutput>[]): string {
  return failures
    .map((f) => `not linearizable (${f.verdict}): ${f.partition}\n${f.report}`)
    .join('\n\n');
}
