import { connect } from '@nats-io/transport-node';
import { createNatsOpLog } from '../adapters/nats/natsOpLog.ts';
import { fromEntry } from '../domain/eventCodec.ts';
import type { LoggedEvent } from '../domain/types.ts';
import { readLog } from '../runtime/readLog.ts';

/** Reads a cluster's whole OpLog back from NATS and decodes every entry. */
export async function readLoggedEvents(natsUrl: string, cluster: string): Promise<LoggedEvent[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const opLog = await createNatsOpLog({ nc, cluster });
    const entries = await readLog(opLog);
    await opLog.close();
    return entries.map(fromEntry);
  } finally {
    await nc.close();
  }
}
