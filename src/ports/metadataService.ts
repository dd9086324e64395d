/**
 * The metadata master as the client API sees it (the service port the API handler calls),
 * implemented by the primary's write pipeline.
 */
import type { Command, ObjectRecord, Replica, RequestOrigin } from '../domain/model/types.ts';
import { UnderstudyError } from '../domain/model/understudyError.ts';

/** What a committed command returns. */
export type ExecuteResult = {
  /** The seq of the log entry that holds the command's event. */
  readonly seq: number;
  /** The placement, for putStart. */
  readonly replicas?: readonly Replica[];
};

/** One result of a batch: the command's result or why it was refused. */
export type BatchItemResult = { ok: true; result: ExecuteResult } | { ok: false; error: Error };

/** The metadata master as the API sees it; implemented by the primary's runtime. */
export interface MetadataService {
  /**
   * Decides `command` and resolves once its event is committed to the OpLog. With `origin`
   * (the client's session and request number) a request already applied resolves with its
   * original result instead, and is not applied again. Rejects with a {@link DomainError} when
   * the command is refused (nothing changed; not retryable; answered only once the state it
   * was judged against is committed) or with {@link NotPrimaryError} when this node does not
   * serve (retryable elsewhere).
   */
  execute(command: Command, origin?: RequestOrigin): Promise<ExecuteResult>;
  /**
   * Decides the commands in order, each against the state the previous ones leave, and
   * resolves with one result per command once all of them can be answered (as `execute`).
   * `origins[i]` is the request of `commands[i]`. Rejects as a whole with
   * {@link NotPrimaryError}.
   */
  executeBatch(
    commands: readonly Command[],
    origins?: readonly (RequestOrigin | undefined)[],
  ): Promise<BatchItemResult[]>;
  /**
   * The committed record of `key`, granting a read lease on it. Rejects with a
   * {@link DomainError} `OBJECT_NOT_FOUND` or {@link NotPrimaryError}.
   */
  get(key: string): Promise<ObjectRecord>;
  /** Whether `key` exists in the committed state. Rejects with {@link NotPrimaryError}. */
  exists(key: string): Promise<boolean>;
}

/** This node does not serve the API (standby, fenced, handing over). Retryable. */
export class NotPrimaryError extends UnderstudyError {
  override readonly name = 'NotPrimaryError';
  override readonly retryable = true;
  readonly code = 'NOT_PRIMARY';
  /** The node believed to be primary, when known. */
  readonly leader?: string;

  constructor(
    readonly reason: string,
    options?: { readonly cause?: unknown; readonly leader?: string },
  ) {
    super(
      `not primary: ${reason}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    if (options?.leader !== undefined) this.leader = options.leader;
  }
}
