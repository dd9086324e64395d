/**
 * The OpLog's JetStream stream: its name and subject, the settings it is created with, the
 * checks those settings must pass, and its creation (or the update of an existing one). A
 * configuration JetStream refuses becomes a {@link StreamConfigError}.
 */
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { minDuplicateWindowMs, StreamConfigError } from './streamLimits.ts';
import { asStreamConfigError, goRoundRacingCreates } from './streamRefusal.ts';

/** `understudy.<cluster>.oplog`, with the cluster name made a single subject token. */
export function opLogSubject(cluster: string): string {
  return `understudy.${cluster.replace(/[^A-Za-z0-9_-]/g, '_')}.oplog`;
}

/** `UNDERSTUDY_<CLUSTER>_OPLOG`, upper-cased, with anything but `A-Z0-9_-` replaced by `_`. */
export function opLogStreamName(cluster: string): string {
  return `UNDERSTUDY_${cluster.toUpperCase().replace(/[^A-Z0-9_-]/g, '_')}_OPLOG`;
}

/** The stream settings an OpLog asks for (all resolved: no defaults left). */
export interface OpLogStreamSettings {
  readonly replicas: 1 | 3;
  readonly maxAgeMs: number;
  readonly maxBytes: number;
  readonly duplicateWindowMs: number;
  /** With `resolveTimeoutMs`, the span of one append's retries the duplicate window must cover. */
  readonly ackTimeoutMs: number;
  readonly resolveTimeoutMs: number;
}

/**
 * Throws {@link StreamConfigError} when the settings cannot keep the OpLog's promises: a
 * duplicate window shorter than one append's retries, or an age limit below the window.
 */
export function checkStreamSettings(streamName: string, settings: OpLogStreamSettings): void {
  const { duplicateWindowMs, maxAgeMs } = settings;
  const least = minDuplicateWindowMs(settings.ackTimeoutMs, settings.resolveTimeoutMs);
  if (duplicateWindowMs < least) {
    throw new StreamConfigError(
      streamName,
      'duplicateWindow',
      `a duplicate window of ${duplicateWindowMs} ms does not cover one append's retries (${least} ms)`,
      undefined,
    );
  }
  if (maxAgeMs > 0 && maxAgeMs < duplicateWindowMs) {
    throw new StreamConfigError(
      streamName,
      'maxAge',
      `an age limit of ${maxAgeMs} ms is below the duplicate window (${duplicateWindowMs} ms)`,
      undefined,
    );
  }
}

/** The stream configuration for `subject` with these settings. */
export function opLogStreamConfig(
  subject: string,
  settings: OpLogStreamSettings,
): Partial<StreamConfig> {
  return {
    subjects: [subject],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: settings.replicas,
    max_age: nanos(settings.maxAgeMs),
    max_bytes: settings.maxBytes,
    duplicate_window: nanos(settings.duplicateWindowMs),
    allow_direct: false,
  };
}

/** Creates or updates the stream; a configuration JetStream refuses rejects with StreamConfigError. */
export async function ensureStream(
  jsm: JetStreamManager,
  streamName: string,
  wanted: Partial<StreamConfig>,
): Promise<void> {
  try {
    await createOrUpdateStream(jsm, streamName, wanted);
  } catch (err) {
    throw asStreamConfigError(streamName, err);
  }
}

async function createOrUpdateStream(
  jsm: JetStreamManager,
  streamName: string,
  wanted: Partial<StreamConfig>,
): Promise<void> {
  // Only a failed add goes round: a lookup or an update that fails is thrown at once.
  let adding = false;
  const round = async (): Promise<void> => {
    adding = false;
    try {
      const info = await jsm.streams.info(streamName);
      const current = info.config;
      if (
        current.max_age !== wanted.max_age ||
        current.max_bytes !== wanted.max_bytes ||
        current.duplicate_window !== wanted.duplicate_window ||
        current.num_replicas !== wanted.num_replicas
      ) {
        await jsm.streams.update(streamName, {
          max_age: wanted.max_age ?? current.max_age,
          max_bytes: wanted.max_bytes ?? current.max_bytes,
          duplicate_window: wanted.duplicate_window ?? current.duplicate_window,
          num_replicas: wanted.num_replicas ?? current.num_replicas,
        });
      }
      return;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) {
        throw err;
      }
    }
    // Not there: add it (another node may be adding it now; see goRoundRacingCreates).
    adding = true;
    await jsm.streams.add({ ...wanted, name: streamName });
  };
  await goRoundRacingCreates(round, 4, () => adding);
}
