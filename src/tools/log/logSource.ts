/**
 * Where the log reader (logReader.ts: `understudy export`, `understudy replay`,
 * `readLoggedEvents`) reads the OpLog from: the cluster's live JetStream stream (read-only: it
 * never creates the stream or changes its settings), or an NDJSON export file. Both yield
 * verified entries and bad ones, in log order, so the caller decides whether a bad entry stops
 * it; which entries count is the reader's part.
 */
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { opLogStreamName } from '../../adapters/nats/stream.ts';
import { CodecError } from '../../domain/log/codec.ts';
import type { OpLogEntry } from '../../domain/log/entry.ts';
import { NatsCheckpointStore } from '../../adapters/nats/natsCheckpointStore.ts';
import { systemClock } from '../../adapters/systemClock.ts';
import { loadCheckpoint } from '../../node/checkpoints/loadCheckpoint.ts';
import { chooseBase, type BaseRequest, type StreamSpan } from './checkpointBase.ts';
import {
  LogUnavailableError,
  StreamTrimmedError,
  type LogItem,
  type LogSource,
} from './logItem.ts';
import { loadCommandSettings, natsSourceSettings } from '../../config/config.ts';
import { natsConnectionOptions, oplogSigningKey } from '../../config/credentials.ts';
import { BatchSignature } from '../../adapters/nats/batchSignature.ts';
import { findMessageHoldingSeq, jetStreamMessageReader } from '../../adapters/nats/streamSearch.ts';
import { NATS_SECURITY_KEYS, type SecurityConfig } from '../../config/securitySettings.ts';
import { MessageItems } from './messageItems.ts';
import { readMetadataCheckpoint } from '../../node/metadataDomain.ts';

export { fileLogSource } from './fileLogSource.ts';
export {
  LogUnavailableError,
  StreamTrimmedError,
  type LogItem,
  type LogSource,
} from './logItem.ts';

/** How to reach a cluster's OpLog stream. */
export interface NatsSourceConfig {
  readonly cluster: string;
  readonly servers: readonly string[];
  /** NATS credentials and TLS (the `nats*` settings of `understudy node`). */
  readonly security: SecurityConfig;
  /** The cluster's OpLog key (`oplogKey`): a message without its signature is a bad one. */
  readonly signingKey?: Uint8Array | undefined;
}

/**
 * The NATS source settings from flags, the environment (`UNDERSTUDY_CLUSTER`,
 * `UNDERSTUDY_NATS`, `UNDERSTUDY_NATS_USER`, ...) and the config file, as for `understudy
 * node`. Throws {@link ConfigError} naming every problem.
 */
export function loadNatsSourceConfig(
  flags: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): NatsSourceConfig {
  const settings = loadCommandSettings(natsSourceSettings, flags, env);
  const security: Record<string, unknown> = {};
  for (const key of NATS_SECURITY_KEYS) {
    if (settings[key] !== undefined) security[key] = settings[key];
  }
  return {
    cluster: settings.cluster,
    servers: settings.nats,
    security,
    signingKey: oplogSigningKey(settings),
  };
}

/** Connects to NATS (failing fast when no server answers) and opens the cluster's stream. */
export async function natsLogSource(config: NatsSourceConfig): Promise<LogSource> {
  const streamName = opLogStreamName(config.cluster);
  const description = `stream ${streamName} on ${config.servers.join(',')}`;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...config.servers],
      name: 'understudy-replay',
      timeout: 5_000,
      ...natsConnectionOptions(config.security),
    });
  } catch (cause) {
    const text = cause instanceof Error ? cause.message : String(cause);
    throw new LogUnavailableError(
      description,
      `cannot reach NATS at ${config.servers.join(',')}: ${text} (the address is set by --nats or UNDERSTUDY_NATS)`,
      { cause },
    );
  }
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc);
  } catch (cause) {
    await nc.close();
    throw new LogUnavailableError(description, 'JetStream is not available', { cause });
  }
  const source = new NatsLogSource(
    nc,
    jsm,
    streamName,
    description,
    new BatchSignature(config.signingKey),
    config.cluster,
  );
  try {
    await source.streamState(); // fails now, before anything is written, when there is no stream
  } catch (error) {
    await nc.close();
    throw error;
  }
  return source;
}

/** How long the stream may stay silent before the read gives up (it should be streaming). */
const IDLE_TIMEOUT_MS = 30_000;

/**
 * A read of the cluster's stream. Exported for tests that stand in for JetStream; callers use
 * {@link natsLogSource}.
 */
export class NatsLogSource implements LogSource {
  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly streamName: string,
    readonly description: string,
    private readonly signature: BatchSignature,
    private readonly cluster: string,
  ) {}

  async close(): Promise<void> {
    await this.nc.close();
  }

  /** The stream's first and last message and its message count, read now. */
  async streamState(): Promise<{ first: number; last: number; messages: number }> {
    try {
      const info = await this.jsm.streams.info(this.streamName);
      return {
        first: info.state.first_seq,
        last: info.state.last_seq,
        messages: info.state.messages,
      };
    } catch (cause) {
      const missing =
        cause instanceof JetStreamApiError && cause.code === JetStreamApiCodes.StreamNotFound;
      throw new LogUnavailableError(
        this.description,
        missing ? 'no such stream (wrong --cluster?)' : `stream info failed: ${String(cause)}`,
        { cause },
      );
    }
  }

  /**
   * Where to start reading so that entry `fromSeq` is not passed over: the adapter's search
   * ({@link findMessageHoldingSeq}); the whole stream from 1, so that every bad message shows.
   */
  async #startStreamSeq(fromSeq: number, first: number, last: number): Promise<number> {
    if (fromSeq <= 1) return first;
    const reader = jetStreamMessageReader(this.jsm, this.streamName, this.signature);
    try {
      return (await findMessageHoldingSeq(reader, fromSeq, first, last)) ?? first;
    } catch (cause) {
      throw new LogUnavailableError(this.description, `cannot read: ${String(cause)}`, { cause });
    }
  }

  /** The first entry seq of the message at `streamSeq` (undefined: gone or does not decode). */
  async #headSeq(streamSeq: number): Promise<number | undefined> {
    try {
      const stored = await this.jsm.streams.getMessage(this.streamName, { seq: streamSeq });
      return stored === null
        ? undefined
        : this.signature.decode(stored.data, stored.header)[0]?.seq;
    } catch {
      return undefined;
    }
  }

  /** The first and last entry seqs the stream holds now (undefined when none is readable). */
  async #span(state: { first: number; last: number; messages: number }): Promise<StreamSpan> {
    if (state.messages === 0) return { firstEntrySeq: undefined, lastEntrySeq: undefined };
    let lastEntrySeq: number | undefined;
    try {
      const stored = await this.jsm.streams.getMessage(this.streamName, { seq: state.last });
      lastEntrySeq =
        stored === null ? undefined : this.signature.decode(stored.data, stored.header).at(-1)?.seq;
    } catch {
      lastEntrySeq = undefined;
    }
    return { firstEntrySeq: await this.#headSeq(state.first), lastEntrySeq };
  }

  /**
   * Where a read with `base` starts: a `note` and a `base` item to yield first, and the first
   * entry seq to read. Throws LogUnavailableError when the log cannot give what was asked.
   */
  async #start(
    state: { first: number; last: number; messages: number },
    base: BaseRequest,
  ): Promise<{ items: LogItem[]; readFrom: number }> {
    const store = await NatsCheckpointStore.openExisting({ nc: this.nc, cluster: this.cluster });
    let listed;
    try {
      listed = (await store?.list()) ?? [];
    } catch (cause) {
      throw new LogUnavailableError(this.description, `cannot list checkpoints: ${String(cause)}`, {
        cause,
      });
    }
    const choice = chooseBase(listed, await this.#span(state), base);
    if (choice.kind === 'unavailable')
      throw new LogUnavailableError(this.description, choice.reason);
    const items: LogItem[] = [];
    if (choice.note !== undefined) items.push({ kind: 'note', text: choice.note });
    const checkpoint = choice.checkpoint;
    if (checkpoint !== undefined && store !== undefined) {
      try {
        const loaded = await loadCheckpoint(store, checkpoint, systemClock, readMetadataCheckpoint);
        items.push({ kind: 'base', checkpoint, state: loaded });
      } catch (cause) {
        throw new LogUnavailableError(
          this.description,
          `checkpoint ${checkpoint.name} cannot be read (${String(cause)}); --checkpoint names another`,
          { cause },
        );
      }
    }
    return { items, readFrom: choice.readFrom };
  }

  /**
   * Stream messages `from..to` that the consumer passed over (stream sequences only grow by
   * one): trimmed away under the read ({@link StreamTrimmedError}: the read has a hole, so it
   * fails), or deleted from the middle of the stream (a `bad` item: what they held is missing).
   */
  async #missing(lost: { from: number; to: number }): Promise<LogItem> {
    const now = await this.streamState();
    if (now.first > lost.from) throw new StreamTrimmedError(this.description, lost, now.first);
    return MessageItems.missing(lost);
  }

  async *read(fromSeq: number, toSeq?: number, base?: BaseRequest): AsyncIterable<LogItem> {
    const state = await this.streamState();
    if (base !== undefined) {
      const start = await this.#start(state, base);
      yield* start.items;
      fromSeq = start.readFrom;
      if (toSeq !== undefined && fromSeq > toSeq) return;
    }
    if (state.messages === 0) return;
    const start = await this.#startStreamSeq(fromSeq, state.first, state.last);
    let messages: ConsumerMessages;
    try {
      const consumer = await this.jsm.jetstream().consumers.get(this.streamName, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: start,
      });
      messages = await consumer.consume();
    } catch (cause) {
      throw new LogUnavailableError(this.description, `cannot consume: ${String(cause)}`, {
        cause,
      });
    }
    let idle: NodeJS.Timeout | undefined;
    let timedOut = false;
    const arm = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        timedOut = true;
        messages.stop();
      }, IDLE_TIMEOUT_MS);
    };
    const cursor = new MessageItems(fromSeq, toSeq);
    // The last stream message met. A read of the whole stream starts at its first message,
    // wherever that is when the consumer starts; a read from an entry needs message `start`.
    let previous = fromSeq > 1 ? start - 1 : undefined;
    try {
      arm();
      for await (const msg of messages) {
        arm();
        if (previous !== undefined && msg.seq > previous + 1) {
          yield await this.#missing({ from: previous + 1, to: msg.seq - 1 });
        }
        previous = msg.seq;
        let entries: OpLogEntry[] = [];
        try {
          entries = this.signature.decode(msg.data, msg.headers);
        } catch (cause) {
          const reason = cause instanceof CodecError ? cause.message : String(cause);
          yield cursor.undecodable(msg.seq, reason, cause);
        }
        yield* cursor.entries(entries, msg.seq);
        // The end is the stream's last message as its leader counts it. Not the consumer's
        // `pending`: an ephemeral consumer sits on any replica of an R3 stream, and on one that
        // is still catching up (a server back from a hang) it counts 0 pending at that
        // replica's end, messages before the leader's; it delivers them once it has them.
        if (cursor.done || msg.seq >= state.last) break;
      }
      if (timedOut) {
        throw new LogUnavailableError(
          this.description,
          `no message for ${IDLE_TIMEOUT_MS} ms before the end (last expected seq ${cursor.expected ?? fromSeq})`,
        );
      }
    } finally {
      clearTimeout(idle);
      messages.stop();
    }
  }
}
