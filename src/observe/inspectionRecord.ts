/**
 * Inspection records: XState's inspection events as JSON, in the form `@statelyai/inspect`
 * sends them (so any of its receivers understands them), with every actor named by its node:
 * session ids `n1/x:0`, actor names `n1/masterNode`, `n1/followLog`. One record is one line
 * of a flight recording (`--record`), one message of a node's `/inspect/events` stream and of
 * `--inspect`.
 */
import type { InspectionEvent } from 'xstate';

/** What a record reads of an actor reference (XState's actor internals that inspectors read too). */
export interface InspectedActor {
  readonly sessionId: string;
  readonly id?: string;
  readonly logic?: { readonly config?: unknown };
  readonly _parent?: { readonly sessionId: string } | undefined;
  getSnapshot(): unknown;
}

/** The protocol version our records claim (the `@statelyai/inspect` release whose form they follow). */
export const INSPECTION_PROTOCOL_VERSION = '0.7.2';

/** The record types: an actor started, an event was sent to an actor, an actor's snapshot changed. */
export type InspectionRecordType = '@xstate.actor' | '@xstate.event' | '@xstate.snapshot';

/** An actor's snapshot as recorded: what a viewer shows (not its children or internals). */
export interface RecordedSnapshot {
  readonly status: string;
  /** A machine's state value (`{ running: { standby: 'following' } }`). */
  readonly value?: unknown;
  readonly context?: unknown;
  readonly output?: unknown;
  readonly error?: unknown;
}

/** A machine event as recorded (`{ type: 'leader.changed', leader: ... }`). */
export interface RecordedEvent {
  readonly type: string;
  readonly [field: string]: unknown;
}

/** One inspection event as JSON. */
export interface InspectionRecord {
  readonly type: InspectionRecordType;
  /** `node/x:N`: unique across the nodes of a cluster. */
  readonly sessionId: string;
  readonly rootId?: string | undefined;
  /** `@xstate.actor`: the parent actor's session id (none for a root actor). */
  readonly parentId?: string | undefined;
  /** `@xstate.actor`: `node/masterNode`, `node/followLog`. */
  readonly name?: string | undefined;
  /** `@xstate.actor`: the machine's configuration as JSON (functions by name). */
  readonly definition?: string | undefined;
  /** `@xstate.event`: what was sent; `@xstate.snapshot`: what caused the snapshot. */
  readonly event?: RecordedEvent | undefined;
  /** `@xstate.event`: the sender's session id, when an actor sent it. */
  readonly sourceId?: string | undefined;
  readonly snapshot?: RecordedSnapshot | undefined;
  /** When it happened, ms since the epoch, as a string (the protocol's form). */
  readonly createdAt: string;
  readonly _version: string;
  readonly id: null;
  /** The node the actor runs on. */
  readonly node: string;
  /**
   * Chatty events (`oplog.progress`) are sampled: this record stands for itself and `folded`
   * more of the same kind that were not sent separately (see `ProgressSampler`).
   */
  readonly folded?: number;
}

/** JSON-safe copy: functions by name, errors as `{ name, message }`, cycles cut, depth bounded. */
export function toPlain(value: unknown, depthLimit = 10): unknown {
  const seen = new WeakSet<object>();
  const copy = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      return v;
    }
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'function') return { type: v.name === '' ? 'anonymous' : v.name };
    if (typeof v !== 'object') return undefined;
    if (v instanceof Error) return { name: v.name, message: v.message };
    if (seen.has(v)) return '[Circular]';
    if (depth >= depthLimit) return '[…]';
    // An actor reference (in a snapshot's children or an event) is shown by its id.
    if ('sessionId' in v && 'send' in v) return { actor: (v as { id?: unknown }).id };
    seen.add(v);
    if (v instanceof Uint8Array) return `[${v.length} bytes]`;
    const out: unknown = Array.isArray(v)
      ? v.map((item) => copy(item, depth + 1))
      : Object.fromEntries(
          Object.entries(v)
            .map(([key, item]) => [key, copy(item, depth + 1)] as const)
            .filter(([, item]) => item !== undefined),
        );
    seen.delete(v);
    return out;
  };
  return copy(value, 0);
}

/** What a viewer needs of a snapshot: status, value, context, output, error. */
export function recordSnapshot(snapshot: unknown): RecordedSnapshot {
  const s = (typeof snapshot === 'object' && snapshot !== null ? snapshot : {}) as Record<
    string,
    unknown
  >;
  const out: Record<string, unknown> = {
    status: typeof s['status'] === 'string' ? s['status'] : 'active',
  };
  for (const key of ['value', 'context', 'output', 'error']) {
    if (s[key] !== undefined) out[key] = toPlain(s[key]);
  }
  return out as unknown as RecordedSnapshot;
}

/** The node's name for a session id: `n1/x:3`. */
export function nodeSessionId(node: string, sessionId: string): string {
  return `${node}/${sessionId}`;
}

/** An actor's name on its node: `n1/followLog`; an id that already names the node is kept. */
export function nodeActorName(node: string, actorId: string): string {
  return actorId.startsWith(`${node}/`) ? actorId : `${node}/${actorId}`;
}

/** The `@xstate.actor` record of `actorRef` with `snapshot` (its current one by default). */
export function actorRecord(
  node: string,
  actorRef: InspectedActor,
  rootId: string,
  at: number,
  snapshot: unknown = actorRef.getSnapshot(),
): InspectionRecord {
  const config = actorRef.logic?.config;
  const configId =
    typeof config === 'object' &&
    config !== null &&
    typeof (config as { id?: unknown }).id === 'string'
      ? (config as { id: string }).id
      : undefined;
  // A root actor's id is its session id unless it was given one: then its machine's id names it.
  const ownId = actorRef.id ?? actorRef.sessionId;
  const id = ownId === actorRef.sessionId && configId !== undefined ? configId : ownId;
  const parent = actorRef._parent;
  return {
    type: '@xstate.actor',
    sessionId: nodeSessionId(node, actorRef.sessionId),
    rootId: nodeSessionId(node, rootId),
    parentId: parent === undefined ? undefined : nodeSessionId(node, parent.sessionId),
    name: nodeActorName(node, id),
    definition: JSON.stringify(toPlain(config ?? { id }, 20)),
    snapshot: recordSnapshot(snapshot),
    createdAt: String(at),
    _version: INSPECTION_PROTOCOL_VERSION,
    id: null,
    node,
  };
}

/**
 * The record of one XState inspection event on `node` at time `at` (ms since the epoch);
 * undefined for the kinds a viewer does not show (microsteps, actions).
 */
export function toInspectionRecord(
  event: InspectionEvent,
  node: string,
  at: number,
  /** For `@xstate.actor`: the actor's snapshot, when known (it cannot be read as it starts). */
  actorSnapshot?: unknown,
): InspectionRecord | undefined {
  const common = {
    sessionId: nodeSessionId(node, event.actorRef.sessionId),
    rootId: nodeSessionId(node, event.rootId),
    createdAt: String(at),
    _version: INSPECTION_PROTOCOL_VERSION,
    id: null,
    node,
  };
  switch (event.type) {
    case '@xstate.actor':
      // The actor is still initialising: its snapshot cannot be read yet (the next record has it).
      return actorRecord(
        node,
        event.actorRef,
        event.rootId,
        at,
        actorSnapshot ?? { status: 'active' },
      );
    case '@xstate.event':
      return {
        ...common,
        type: '@xstate.event',
        event: toPlain(event.event) as RecordedEvent,
        sourceId:
          event.sourceRef === undefined
            ? undefined
            : nodeSessionId(node, event.sourceRef.sessionId),
      };
    case '@xstate.snapshot':
      return {
        ...common,
        type: '@xstate.snapshot',
        event: toPlain(event.event) as RecordedEvent,
        snapshot: recordSnapshot(event.snapshot),
      };
    default:
      return undefined;
  }
}
