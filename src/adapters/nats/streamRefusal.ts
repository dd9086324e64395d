// JetStream's refusals of a stream configuration as StreamConfigError (see streamLimits.ts).
import { JetStreamApiError } from '@nats-io/jetstream';
import { refusedSetting, STREAM_CONFIG_REFUSALS, StreamConfigError } from './streamLimits.ts';

/**
 * `err` as a {@link StreamConfigError} when it is a JetStream refusal of `stream`'s
 * configuration ({@link STREAM_CONFIG_REFUSALS}); otherwise `err` itself.
 */
export function asStreamConfigError(stream: string, err: unknown): unknown {
  if (!(err instanceof JetStreamApiError) || !STREAM_CONFIG_REFUSALS.has(err.code)) return err;
  return new StreamConfigError(stream, refusedSetting(err.message), err.message, err.code, {
    cause: err,
  });
}
