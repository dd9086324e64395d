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

/**
 * Runs `create` (look a stream or bucket up, add it when missing) up to `rounds` times, until
 * one does not throw; the last failure, or one `goesRound` refuses, is thrown. Nodes starting
 * at once race to add the same stream, and NATS 2.9 may refuse the loser's add as a
 * configuration ("subjects overlap with an existing stream", seen with three nodes starting at
 * once): the next round finds the stream the winner made. A refusal that stays after every
 * round is the configuration's.
 */
export async function goRoundRacingCreates<T>(
  create: () => Promise<T>,
  rounds: number,
  goesRound: () => boolean = () => true,
): Promise<T> {
  for (let round = 1; ; round++) {
    try {
      return await create();
    } catch (err) {
      if (round >= rounds || !goesRound()) throw err;
    }
  }
}
