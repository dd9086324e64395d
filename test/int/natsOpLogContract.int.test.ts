// The OpLog port's contract against NATS JetStream: each test gets its own nats-server.
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { createNatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import { opLogSubject } from '../../src/adapters/nats/stream.ts';
import { encodeBatch } from '../../src/domain/log/codec.ts';
import type { OpLog } from '../../src/ports/opLog.ts';
import { describeOpLogContract } from '../contract/opLog.contract.ts';
import { startNats } from '../harness/index.ts';

describeOpLogContract(
  'NATS JetStream',
  async () => {
    const server = await startNats();
    const cluster = `c${randomUUID().slice(0, 8)}`;
    const connections: NatsConnection[] = [];
    return {
      async makeLog(): Promise<OpLog> {
        const nc = await connect({ servers: server.url });
        connections.push(nc);
        const log = await createNatsOpLog({ nc, cluster });
        return {
          openWriter: (options) => log.openWriter(options),
          follow: (fromSeq, options) => log.follow(fromSeq, options),
          bounds: () => log.bounds(),
          trimThrough: (streamSeq) => log.trimThrough(streamSeq),
          async close() {
            await log.close();
            await nc.close();
          },
        };
      },
      async publishUndecodable(): Promise<number> {
        const nc = await connect({ servers: server.url });
        connections.push(nc);
        // 64 bytes that are no batch, published as an outsider would (no expected sequence).
        const ack = await jetstream(nc).publish(
          opLogSubject(cluster),
          new Uint8Array(64).fill(0x5a),
        );
        return ack.seq;
      },
      async publishOutsider(entries): Promise<number> {
        const nc = await connect({ servers: server.url });
        connections.push(nc);
        const ack = await jetstream(nc).publish(opLogSubject(cluster), encodeBatch(entries));
        return ack.seq;
      },
      async cleanup() {
        await Promise.allSettled(connections.map((nc) => nc.close()));
        await server[Symbol.asyncDispose]();
      },
    };
  },
  { trims: true, undecodable: true },
);
