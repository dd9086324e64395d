/**
 * Checkpoints in a JetStream object store bucket (`@nats-io/obj`), one bucket per cluster.
 *
 * The object store writes an object's data chunks first and its metadata message last, and
 * lists only objects whose metadata is there: a writer that dies midway leaves chunks nobody
 * lists. On top of that a checkpoint is stored under a staging name (`tmp.…`), read back and
 * checked by its writer, and only then renamed to its final name (`cp.…`), the only names
 * {@link NatsCheckpointStore.list} shows.
 */
import { JetStreamApiError, StorageType, jetstreamManager } from '@nats-io/jetstream';
import { nuid, type NatsConnection } from '@nats-io/nats-core';
import { Objm, setSha256Backend, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import { asStreamConfigError, goRoundRacingCreates } from './streamRefusal.ts';
import {
  checkpointName,
  CheckpointMissingError,
  newestFirst,
  type CheckpointDescription,
  type CheckpointInfo,
  type CheckpointStore,
  type StagedCheckpoint,
} from '../../ports/checkpointStore.ts';

export interface NatsCheckpointStoreOptions {
  /** The caller owns it: `close()` does not close it. */
  readonly nc: NatsConnection;
  /** Names the bucket `understudy_<cluster>` (stream `OBJ_understudy_<cluster>`). */
  readonly cluster: string;
  /** Bucket replicas (default 1). */
  readonly replicas?: 1 | 3;
}

/** `understudy_<cluster>`, with anything but `A-Za-z0-9_-` replaced by `_`. */
export function checkpointBucketName(cluster: string): string {
  return `understudy_${cluster.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

const FINAL = 'cp.';
const STAGING = 'tmp.';

/** The metadata strings a checkpoint object carries. */
function metadataOf(description: CheckpointDescription): Record<string, string> {
  return {
    appliedSeq: String(description.appliedSeq),
    lastStreamSeq: String(description.lastStreamSeq),
    stateDigest: String(description.stateDigest),
    epoch: String(description.epoch),
    objectCount: String(description.objectCount),
    sessionCount: String(description.sessionCount),
    writer: description.writer,
  };
}

/** The checkpoint an object's metadata describes, or undefined when it is not one of ours. */
function infoOf(object: ObjectInfo): CheckpointInfo | undefined {
  const m = object.metadata ?? {};
  const int = (key: string): number | undefined => {
    const text = m[key];
    if (text === undefined || !/^\d+$/.test(text)) return undefined;
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : undefined;
  };
  const appliedSeq = int('appliedSeq');
  const lastStreamSeq = int('lastStreamSeq');
  const stateDigest = int('stateDigest');
  const epoch = int('epoch');
  const objectCount = int('objectCount');
  const sessionCount = int('sessionCount');
  const writer = m['writer'];
  if (
    appliedSeq === undefined ||
    lastStreamSeq === undefined ||
    stateDigest === undefined ||
    epoch === undefined ||
    objectCount === undefined ||
    sessionCount === undefined ||
    writer === undefined
  )
    return undefined;
  const createdAt = Date.parse(object.mtime);
  return {
    name: object.name,
    appliedSeq,
    lastStreamSeq,
    stateDigest,
    epoch,
    objectCount,
    sessionCount,
    writer,
    createdAt: Number.isNaN(createdAt) ? 0 : createdAt,
    bytes: object.size,
  };
}

function framesStream(frames: Iterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = frames[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = iterator.next();
      if (next.done === true) controller.close();
      else controller.enqueue(next.value);
    },
    cancel() {
      iterator.return?.();
    },
  });
}

/**
 * The object store hashes every chunk it writes with SHA-256 in pure JavaScript unless told
 * otherwise (its default, for browsers): about 70 ms per MB on the writer's main loop, 0.7 s for
 * a checkpoint of 300k objects and 3 s at 1M, during which the writing standby folds nothing.
 * Node's crypto does the same hash at about 1 ms per MB. The choice is process-wide: every
 * store a node opens makes it.
 */
function hashNatively(): void {
  setSha256Backend('native');
}

/** The checkpoint store on a JetStream object store bucket. */
export class NatsCheckpointStore implements CheckpointStore {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly os: ObjectStore,
    readonly bucket: string,
  ) {}

  /** Opens (creating it when missing) the cluster's bucket. */
  static async open(options: NatsCheckpointStoreOptions): Promise<NatsCheckpointStore> {
    const bucket = checkpointBucketName(options.cluster);
    hashNatively();
    // The object store looks the bucket up and adds it when missing: members starting at once
    // race to add it (see goRoundRacingCreates).
    const os = await goRoundRacingCreates(
      () =>
        new Objm(options.nc).create(bucket, {
          storage: StorageType.File,
          replicas: options.replicas ?? 1,
        }),
      3,
    ).catch((err: unknown) => {
      throw asStreamConfigError(`the checkpoint bucket ${bucket}`, err);
    });
    return new NatsCheckpointStore(options.nc, os, bucket);
  }

  /**
   * Opens the cluster's bucket for reading only: never creates it. Resolves undefined when the
   * cluster has no bucket (it never wrote a checkpoint).
   */
  static async openExisting(
    options: Omit<NatsCheckpointStoreOptions, 'replicas'>,
  ): Promise<NatsCheckpointStore | undefined> {
    const bucket = checkpointBucketName(options.cluster);
    hashNatively();
    try {
      const os = await new Objm(options.nc).open(bucket);
      return new NatsCheckpointStore(options.nc, os, bucket);
    } catch (err) {
      if (err instanceof Error && err.message === 'object store not found') return undefined;
      throw err;
    }
  }

  async list(): Promise<CheckpointInfo[]> {
    const objects = await this.os.list();
    const out: CheckpointInfo[] = [];
    for (const object of objects) {
      if (object.deleted || !object.name.startsWith(FINAL)) continue;
      const info = infoOf(object);
      if (info !== undefined) out.push(info);
    }
    return out.sort(newestFirst);
  }

  async write(frames: Iterable<Uint8Array>): Promise<StagedCheckpoint> {
    const staging = `${STAGING}${Date.now().toString(36)}.${nuid.next()}`;
    await this.os.put({ name: staging }, framesStream(frames));
    return {
      read: () => this.#read(staging),
      publish: async (description: CheckpointDescription) => {
        const final = checkpointName(description.appliedSeq, description.writer);
        // A checkpoint of the same seq by the same writer (an earlier try) gives way.
        const existing = await this.os.info(final);
        if (existing !== null && !existing.deleted) await this.os.delete(final);
        // update() keeps only what it is given: the metadata goes along.
        await this.os.update(staging, { name: final, metadata: metadataOf(description) });
        const info = await this.os.info(final);
        const listed = info === null ? undefined : infoOf(info);
        if (listed === undefined) throw new CheckpointMissingError(final);
        return listed;
      },
      discard: async () => {
        await this.os.delete(staging);
      },
    };
  }

  read(name: string): AsyncIterable<Uint8Array> {
    return this.#read(name);
  }

  /**
   * The object's data chunks, read one by one with JetStream's direct get ("the next message on
   * the object's chunk subject after seq N") rather than the object store's own `get()`, whose
   * ordered consumer can stop delivering for good on nats-server 2.9 (seen at 1M objects: a
   * cold start's read and a writer's read-back that never ended). Each get is one request with
   * its own timeout, so a read fails rather than waits; a chunk missing from the stream ends the
   * read early (the checkpoint reader then reports it truncated).
   */
  async *#read(name: string): AsyncIterable<Uint8Array> {
    const object = await this.os.info(name);
    if (object === null || object.deleted) throw new CheckpointMissingError(name);
    const jsm = await jetstreamManager(this.nc);
    const stream = `OBJ_${this.bucket}`;
    const subject = `$O.${this.bucket}.C.${object.nuid}`;
    let seq = 0;
    for (let chunk = 0; chunk < object.chunks; chunk++) {
      const message = await jsm.direct.getMessage(stream, { seq: seq + 1, next_by_subj: subject });
      if (message === null) return;
      seq = message.seq;
      if (message.data.length > 0) yield message.data;
    }
  }

  async rebase(name: string, lastStreamSeq: number): Promise<CheckpointInfo> {
    const object = await this.os.info(name);
    const info = object === null || object.deleted ? undefined : infoOf(object);
    if (info === undefined) throw new CheckpointMissingError(name);
    // update() keeps only the metadata it is given: all of it goes along, one field changed.
    await this.os.update(name, { name, metadata: metadataOf({ ...info, lastStreamSeq }) });
    const updated = await this.os.info(name);
    const listed = updated === null ? undefined : infoOf(updated);
    if (listed === undefined) throw new CheckpointMissingError(name);
    return listed;
  }

  async remove(name: string): Promise<void> {
    await this.os.delete(name);
  }

  async removeLeftovers(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const object of await this.os.list()) {
      if (object.deleted || !object.name.startsWith(STAGING)) continue;
      if (Date.parse(object.mtime) > cutoff) continue;
      await this.os.delete(object.name);
      removed++;
    }
    return removed + (await this.#removeOrphanChunks(cutoff));
  }

  /** Purges data chunks no object names (a writer died before its metadata): older than cutoff. */
  async #removeOrphanChunks(cutoff: number): Promise<number> {
    const status = await this.os.status();
    const stream = status.streamInfo.config.name;
    const jsm = await jetstreamManager(this.nc);
    const prefix = `$O.${this.bucket}.C.`;
    const info = await jsm.streams.info(stream, { subjects_filter: `${prefix}>` });
    const subjects = Object.keys(info.state.subjects ?? {});
    if (subjects.length === 0) return 0;
    const used = new Set((await this.os.list()).map((object) => object.nuid));
    let removed = 0;
    for (const subject of subjects) {
      if (used.has(subject.slice(prefix.length))) continue;
      try {
        const last = await jsm.streams.getMessage(stream, { last_by_subj: subject });
        if (last === null || last.time.getTime() > cutoff) continue;
      } catch (err) {
        if (err instanceof JetStreamApiError) continue;
        throw err;
      }
      await jsm.streams.purge(stream, { filter: subject });
      removed++;
    }
    return removed;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
