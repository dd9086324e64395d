/**
 * The metadata as a node domain: the one place the node names the metadata's modules. Everything
 * else under src/node reaches the metadata through {@link NodeDomain} (nodeDomain.ts).
 */
import { metadataDecider } from '../domain/decider.ts';
import { decideEviction, type EvictionPolicy } from '../domain/decide/eviction.ts';
import { requestStatus } from '../domain/decide/sessions.ts';
import { METADATA_FENCES } from '../domain/log/admission.ts';
import { checkOrigin, fromEntry, toEntry } from '../domain/log/eventCodec.ts';
import { invalidArgument, objectNotFound } from '../domain/model/errors.ts';
import { getObject } from '../domain/model/state.ts';
import type { Command, MetadataEvent, MetadataState } from '../domain/model/types.ts';
import {
  CheckpointReader,
  checkpointFrames,
  type CheckpointClaim,
} from '../domain/snapshot/checkpoint.ts';
import { createApiHandler, type ApiHandlerOptions } from '../api/handler.ts';
import { API_OPS } from '../api/schema.ts';
import { fetchFullSync, FullSyncSource } from '../admin/fullSync.ts';
import { runVerificationRound, verifyOp } from '../admin/verification.ts';
import type { ExecuteResult, MetadataService } from '../ports/metadataService.ts';
import type { CommandService, NodeDomain, Replication } from './nodeDomain.ts';

/** The metadata domain: state, commands, events and answers. */
export type MetadataNodeDomain = NodeDomain<MetadataState, Command, MetadataEvent, ExecuteResult>;

function answer(event: MetadataEvent, seq: number): ExecuteResult {
  return event.op === 'PUT_START' ? { seq, replicas: event.replicas } : { seq };
}

/** The API's service over a primary's pipeline (the metadata's reads): `get` read-leases what it returns. */
export function metadataService(
  service: CommandService<MetadataState, Command, ExecuteResult>,
  grant: (key: string) => void,
): MetadataService {
  return {
    execute: (command, origin) => service.execute(command, origin),
    executeBatch: (commands, origins) => service.executeBatch(commands, origins),
    get: (key) =>
      service.read((state) => {
        const record = getObject(state, key);
        if (record === undefined) throw objectNotFound(key);
        grant(key);
        return record;
      }),
    exists: (key) => service.read((state) => getObject(state, key) !== undefined),
  };
}

/** A reader fed every one of `pieces` (`keep: false`: it can only check, not build). */
async function fedReader(
  pieces: AsyncIterable<Uint8Array>,
  claim: CheckpointClaim,
  keep: boolean,
): Promise<CheckpointReader> {
  const reader = new CheckpointReader(claim, { keep });
  for await (const piece of pieces) reader.add(piece);
  return reader;
}

/** Rebuilds the metadata a checkpoint's pieces hold, checking every chunk CRC and `claim`'s digest. */
export async function readMetadataCheckpoint(
  pieces: AsyncIterable<Uint8Array>,
  claim: CheckpointClaim,
): Promise<MetadataState> {
  return (await fedReader(pieces, claim, true)).finish();
}

/** Checks a checkpoint's pieces against `claim` without building its state. */
export async function checkMetadataCheckpoint(
  pieces: AsyncIterable<Uint8Array>,
  claim: CheckpointClaim,
): Promise<void> {
  (await fedReader(pieces, claim, false)).check();
}

/** Verification, full sync and checkpoints of the metadata (the CLI and tools read checkpoints with it). */
export const metadataReplication: Replication<MetadataState> = {
  adminOps: ({ committed, clock, maxPartBytes, maxGap, maxMismatches, onAnswer }) => {
    const source = new FullSyncSource({
      committed,
      clock,
      ...(maxPartBytes === undefined ? {} : { maxPartBytes }),
    });
    return {
      ops: {
        verify: verifyOp({
          committed: () => committed().state,
          maxGap,
          maxMismatches,
          onAnswer: (request, response) => onAnswer(request.appliedSeq, response.status),
        }),
        ...source.ops(),
      },
      clear: () => source.clear(),
    };
  },
  verifyRound: runVerificationRound,
  fullSync: fetchFullSync,
  checkpointFrames: (state, onDigest) => checkpointFrames(state, undefined, onDigest),
  readCheckpoint: readMetadataCheckpoint,
  checkCheckpoint: checkMetadataCheckpoint,
  counts: (state) => ({ objects: state.objectCount, sessions: state.sessionCount }),
};

/**
 * The metadata domain a node runs: decide.ts and the fold, the binary entry codec with `EPOCH`
 * fences, client sessions, the eviction `policy` (when a putStart finds no space, and on the
 * primary's timer), the client API, and verification, full sync and checkpoints. With `group`
 * (a member of one group of several), the API refuses keys of other groups.
 */
export function metadataNodeDomain(
  policy: EvictionPolicy,
  options: { readonly group?: ApiHandlerOptions['group'] } = {},
): MetadataNodeDomain {
  const handlerOptions = options.group === undefined ? {} : { group: options.group };
  return {
    decider: metadataDecider,
    log: {
      ...METADATA_FENCES,
      fenceOp: 'EPOCH',
      fence: (epoch, nodeId) => ({ op: 'EPOCH', epoch, nodeId }),
      toEntry,
      fromEntry,
    },
    writes: {
      checkOrigin: (origin) => {
        const bad = checkOrigin(origin);
        return bad === undefined ? undefined : invalidArgument(bad.field, bad.message);
      },
      requestStatus: (state, origin, command) => {
        const known = requestStatus(state, origin, command);
        if (known.kind !== 'applied') return known;
        const { seq, replicas } = known.result;
        return { kind: 'applied', answer: replicas === undefined ? { seq } : { seq, replicas } };
      },
      answer,
      makeRoom: (command, error, state, ctx) =>
        error.code === 'NO_SPACE' && command.type === 'putStart'
          ? decideEviction(state, policy, ctx)
          : null,
      housekeeping: (state, ctx) => decideEviction(state, policy, ctx),
    },
    service: {
      handler: (service, grant) =>
        createApiHandler(metadataService(service, grant), handlerOptions),
      ops: API_OPS,
      holds: (state, key) => getObject(state, key) !== undefined,
    },
    replication: metadataReplication,
  };
}
