// Fault 6: a stream configuration NATS JetStream refuses is a settings error naming the flag,
// never a dependency to wait for.
import { JetStreamApiError } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { createNatsOpLog } from '../../src/adapters/nats/natsOpLog.ts';
import { StreamConfigError } from '../../src/adapters/nats/streamLimits.ts';
import { asStreamConfigError } from '../../src/adapters/nats/streamRefusal.ts';
import { refusedSettings } from '../../src/process/nodeProcess.ts';
import type { NatsConnection } from '@nats-io/nats-core';

const apiError = (err_code: number, description: string, code = 500): JetStreamApiError =>
  new JetStreamApiError({ code, err_code, description });

describe('stream configuration refusals', () => {
  it('a configuration refusal becomes StreamConfigError naming the setting; unavailability does not', () => {
    const age = asStreamConfigError(
      'S',
      apiError(10052, 'duplicates window can not be larger then max age'),
    );
    expect(age).toBeInstanceOf(StreamConfigError);
    expect(age).toMatchObject({
      stream: 'S',
      setting: 'maxAge',
      code: 'STREAM_CONFIG',
      errCode: 10052,
    });
    const replicas = asStreamConfigError(
      'S',
      apiError(10074, 'replicas > 1 not supported in non-clustered mode'),
    );
    expect(replicas).toMatchObject({ setting: 'replicas', code: 'STREAM_CONFIG', errCode: 10074 });
    const overlap = asStreamConfigError(
      'S',
      apiError(10065, 'subjects overlap with an existing stream', 400),
    );
    expect(overlap).toMatchObject({ setting: undefined, code: 'STREAM_CONFIG', errCode: 10065 });
    const unavailable = apiError(10008, 'JetStream system temporarily unavailable', 503);
    expect(asStreamConfigError('S', unavailable)).toBe(unavailable);
    const other = new Error('timeout');
    expect(asStreamConfigError('S', other)).toBe(other);
  });

  it('the node names the flag and the variable in one line', () => {
    const age = asStreamConfigError(
      'UNDERSTUDY_C_OPLOG',
      apiError(10052, 'duplicates window can not be larger then max age'),
    );
    expect(refusedSettings(age)?.message).toBe(
      'bad configuration: --stream-max-age (UNDERSTUDY_STREAM_MAX_AGE): NATS JetStream refused ' +
        'UNDERSTUDY_C_OPLOG: duplicates window can not be larger then max age',
    );
    const overlap = asStreamConfigError('S', apiError(10065, 'subjects overlap', 400));
    expect(refusedSettings(overlap)?.message).toMatch(
      /^bad configuration: --stream-replicas \(UNDERSTUDY_STREAM_REPLICAS\), --stream-max-age .* or --stream-max-bytes .*: NATS JetStream refused S: subjects overlap$/,
    );
    expect(refusedSettings(new Error('down'))).toBeUndefined();
  });

  it('createNatsOpLog refuses an age below the duplicate window before asking the server', async () => {
    const nc = {} as NatsConnection;
    await expect(createNatsOpLog({ nc, cluster: 'c', maxAgeMs: 60_000 })).rejects.toMatchObject({
      name: 'StreamConfigError',
      setting: 'maxAge',
    });
    await expect(
      createNatsOpLog({ nc, cluster: 'c', duplicateWindowMs: 10_000 }),
    ).rejects.toMatchObject({ name: 'StreamConfigError', setting: 'duplicateWindow' });
  });
});
