import { place } from './allocator.ts';
import type { DomainError } from '../model/errors.ts';
import {
  invalidArgument,
  invalidState,
  leased,
  noSpace,
  notEnoughNodes,
  ObjectExistsError,
  objectNotFound,
  segmentExists,
  segmentNotFound,
} from '../model/errors.ts';
import {
  MAX_KEY_BYTES,
  MAX_NODE_ID_BYTES,
  MAX_OBJECT_SIZE,
  MAX_REPLICAS,
  MAX_SEGMENT_ID_BYTES,
  MAX_SEGMENT_SIZE,
} from '../model/limits.ts';
import { getObject, getSegment } from '../model/state.ts';
import type { Command, MetadataEvent, MetadataState } from '../model/types.ts';
import { checkInteger, checkString, isRecord } from '../model/validate.ts';

/** What decide needs to know that is not in the log. */
export interface DecideContext {
  /** True while a reader may still be reading `key` (a read lease, or the post-promotion window). */
  isReadLeased(key: string): boolean;
}

export type Decision =
  | { readonly ok: true; readonly event: MetadataEvent }
  | { readonly ok: false; readonly error: DomainError };

/** Every command type. */
export const COMMAND_TYPES = [
  'mountSegment',
  'unmountSegment',
  'putStart',
  'putEnd',
  'putRevoke',
  'remove',
] as const satisfies readonly Command['type'][];
const COMMAND_TYPE_NAMES: readonly string[] = COMMAND_TYPES;

function fail(error: DomainError): Decision {
  return { ok: false, error };
}

function accept(event: MetadataEvent): Decision {
  return { ok: true, event };
}

/**
 * Validates `command` (any value: it may come from the wire) field by field against the
 * limits, then checks it against `state` and returns the event to log, or the error. Never
 * mutates `state`; the event carries every decision (placement), so folding it needs no
 * further choice.
 */
export function decide(state: MetadataState, command: Command, ctx: DecideContext): Decision {
  const raw: unknown = command;
  if (!isRecord(raw)) return fail(invalidArgument('command', 'must be an object'));
  const type = raw['type'];
  if (typeof type !== 'string' || !COMMAND_TYPE_NAMES.includes(type)) {
    return fail(
      invalidArgument(
        'type',
        `unknown command type ${JSON.stringify(type)}`,
        COMMAND_TYPE_NAMES.join('|'),
      ),
    );
  }
  switch (command.type) {
    case 'mountSegment': {
      const error =
        checkString(raw['segmentId'], 'segmentId', MAX_SEGMENT_ID_BYTES) ??
        checkString(raw['nodeId'], 'nodeId', MAX_NODE_ID_BYTES) ??
        checkInteger(raw['size'], 'size', 1, MAX_SEGMENT_SIZE) ??
        (raw['base'] === undefined
          ? undefined
          : checkInteger(raw['base'], 'base', 0, MAX_SEGMENT_SIZE - command.size));
      if (error !== undefined) return fail(error);
      if (getSegment(state, command.segmentId) !== undefined)
        return fail(segmentExists(command.segmentId));
      const base = command.base ?? 0;
      return accept({
        op: 'MOUNT_SEGMENT',
        segmentId: command.segmentId,
        nodeId: command.nodeId,
        size: command.size,
        ...(base > 0 ? { base } : {}),
      });
    }
    case 'unmountSegment': {
      const error = checkString(raw['segmentId'], 'segmentId', MAX_SEGMENT_ID_BYTES);
      if (error !== undefined) return fail(error);
      if (getSegment(state, command.segmentId) === undefined)
        return fail(segmentNotFound(command.segmentId));
      return accept({ op: 'UNMOUNT_SEGMENT', segmentId: command.segmentId });
    }
    case 'putStart': {
      const error =
        checkString(raw['key'], 'key', MAX_KEY_BYTES) ??
        checkInteger(raw['size'], 'size', 1, MAX_OBJECT_SIZE) ??
        checkInteger(raw['replicaNum'], 'replicaNum', 1, MAX_REPLICAS);
      if (error !== undefined) return fail(error);
      const existing = getObject(state, command.key);
      if (existing !== undefined) {
        const complete = existing.replicas.every((r) => r.status === 'complete');
        return fail(new ObjectExistsError(command.key, existing.replicas, complete));
      }
      const placement = place(state, command.size, command.replicaNum);
      if (!placement.ok) {
        return fail(
          placement.reason === 'NOT_ENOUGH_NODES'
            ? notEnoughNodes(command.replicaNum, placement.nodesWithRoom)
            : noSpace(command.size, command.replicaNum),
        );
      }
      return accept({
        op: 'PUT_START',
        key: command.key,
        size: command.size,
        replicas: placement.replicas,
      });
    }
    case 'putEnd':
    case 'putRevoke':
    case 'remove': {
      const error = checkString(raw['key'], 'key', MAX_KEY_BYTES);
      if (error !== undefined) return fail(error);
      const record = getObject(state, command.key);
      if (record === undefined) return fail(objectNotFound(command.key));
      const processing = record.replicas.some((r) => r.status === 'processing');
      if (command.type === 'putEnd') {
        if (!processing) return fail(invalidState(command.key, 'put already complete'));
        return accept({ op: 'PUT_END', key: command.key });
      }
      if (command.type === 'putRevoke') {
        if (!processing)
          return fail(invalidState(command.key, 'put already complete: remove it instead'));
        return accept({ op: 'PUT_REVOKE', key: command.key });
      }
      if (ctx.isReadLeased(command.key)) return fail(leased(command.key));
      if (processing) return fail(invalidState(command.key, 'put in progress: revoke it instead'));
      return accept({ op: 'REMOVE', key: command.key });
    }
  }
}
