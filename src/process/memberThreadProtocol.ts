/**
 * The messages between a node process's main thread and a group member running in a worker
 * thread of its own (`--group-threads worker`): memberThread.ts is the main side,
 * memberWorker.ts the worker.
 */
import type { NodeConfig } from '../config/config.ts';
import type { MetricFamily } from '../observe/prometheusText.ts';
import { ConfigError } from '../config/settings.ts';
import { CredentialsFileError } from '../config/credentials.ts';
import { GroupCountMismatchError } from '../node/groupCountCheck.ts';
import { OplogKeyMismatchError } from '../node/oplogKeyCheck.ts';
import type { GroupSummary } from './groupRequests.ts';

/** What the worker is started with (its `workerData`). */
export interface MemberWorkerData {
  readonly role: 'understudyMember';
  readonly config: NodeConfig;
  readonly group: number;
  /** The process's advertised HTTP address (member records, peer probes). */
  readonly httpAddress: string;
  /** Whether the process sends inspection records to an inspector. */
  readonly inspect: boolean;
}

/** An error as it crosses threads: rebuilt as the same class when it is one a caller tells apart. */
export interface ThreadError {
  readonly name: string;
  /** Its class and the classes it extends, nearest first. */
  readonly classes: readonly string[];
  readonly message: string;
  readonly stack: string | undefined;
  readonly fields: Readonly<Record<string, unknown>>;
}

export type ToMember =
  | { readonly type: 'start' }
  | { readonly type: 'ask'; readonly id: number; readonly what: 'summary' | 'families' }
  | { readonly type: 'stop' };

export type FromMember =
  /** A log line as pino wrote it (JSON, newline-terminated). */
  | { readonly type: 'log'; readonly line: string }
  /** An inspection record for the process's inspector. */
  | { readonly type: 'inspect'; readonly record: object }
  /** What the member waits for while it starts (undefined: nothing now). */
  | { readonly type: 'waiting'; readonly what: string | undefined }
  /** Started: its answers are served at `url` (loopback, this process only). */
  | { readonly type: 'started'; readonly url: string }
  | { readonly type: 'failed'; readonly error: ThreadError }
  /** Its runtime stopped itself with a refusal (another live process has this id, ...). */
  | { readonly type: 'refused'; readonly error: ThreadError }
  | {
      readonly type: 'answer';
      readonly id: number;
      readonly value: GroupSummary | MetricFamily[];
    }
  | { readonly type: 'stopped' };

/** `err` as it crosses threads (own enumerable fields that can be cloned). */
export function toThreadError(err: unknown): ThreadError {
  if (!(err instanceof Error)) {
    return { name: 'Error', classes: [], message: String(err), stack: undefined, fields: {} };
  }
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(err)) {
    const t = typeof value;
    if (t === 'string' || t === 'number' || t === 'boolean' || value === null) fields[key] = value;
  }
  const classes: string[] = [];
  for (let p: unknown = Object.getPrototypeOf(err); p !== null && p !== Error.prototype;) {
    classes.push((p as { constructor: { name: string } }).constructor.name);
    p = Object.getPrototypeOf(p);
  }
  return { name: err.name, classes, message: err.message, stack: err.stack, fields };
}

/** The classes the node command tells apart when a member cannot start or refuses to run. */
const KNOWN: Readonly<Record<string, { readonly prototype: Error }>> = {
  ConfigError,
  CredentialsFileError,
  GroupCountMismatchError,
  OplogKeyMismatchError,
};

/** The error a {@link ThreadError} stands for: of its class when it is a known one. */
export function fromThreadError(e: ThreadError): Error {
  const known = e.classes.map((c) => KNOWN[c]).find((k) => k !== undefined);
  const err: Error =
    known === undefined ? new Error(e.message) : (Object.create(known.prototype) as Error);
  Object.assign(err, e.fields);
  Object.defineProperty(err, 'message', { value: e.message, writable: true, configurable: true });
  if (e.stack !== undefined) {
    Object.defineProperty(err, 'stack', { value: e.stack, writable: true, configurable: true });
  }
  return err;
}
