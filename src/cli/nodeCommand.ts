import type { Command } from 'commander';
import { pino } from 'pino';
import { loadNodeConfig } from '../runtime/config.ts';
import { startNode } from '../runtime/nodeProcess.ts';

/** `understudy node`: runs one master node until SIGTERM/SIGINT (then hands over and exits 0). */
export function registerNodeCommand(program: Command): void {
  program
    .command('node')
    .description('run a master node (primary or standby, decided by election)')
    .option('--config <file>', 'JSON config file (env UNDERSTUDY_CONFIG)')
    .option('--id <id>', 'node id, unique in the cluster (env UNDERSTUDY_ID)')
    .option('--cluster <name>', 'cluster name (env UNDERSTUDY_CLUSTER)')
    .option('--nats <urls>', 'NATS servers, comma-separated (env UNDERSTUDY_NATS)')
    .option('--etcd <urls>', 'etcd endpoints, comma-separated (env UNDERSTUDY_ETCD)')
    .option('--lease-ttl <duration>', 'leader lease TTL, e.g. 5s (env UNDERSTUDY_LEASE_TTL)')
    .option('--http <host:port>', 'status server address (env UNDERSTUDY_HTTP)')
    .option(
      '--inspect <url>',
      'send the node actors to an XState inspector at this WebSocket URL (env UNDERSTUDY_INSPECT)',
    )
    .option(
      '--oplog <kind>',
      'OpLog backend: nats (default) or etcd, the baseline (env UNDERSTUDY_OPLOG)',
    )
    .option(
      '--stream-replicas <n>',
      'OpLog stream replicas, 1 or 3 (env UNDERSTUDY_STREAM_REPLICAS)',
    )
    .option(
      '--stream-max-age <duration>',
      'OpLog age limit, a guard: 0 (default) or at least 3 checkpoint intervals (env UNDERSTUDY_STREAM_MAX_AGE)',
    )
    .option(
      '--stream-max-bytes <n>',
      'OpLog size limit: only -1 (unlimited, default) is accepted (env UNDERSTUDY_STREAM_MAX_BYTES)',
    )
    .option(
      '--checkpoint-interval-entries <n>',
      'write a checkpoint after this many entries (default 100000)',
    )
    .option(
      '--checkpoint-interval <duration>',
      'or once the newest checkpoint is this old (default 10m)',
    )
    .option('--checkpoint-keep <n>', 'checkpoints kept; the stream is trimmed below them (3)')
    .option('--max-lag-for-promotion <n>', 'a standby further behind does not campaign')
    .option('--campaign-base-delay <duration>', 'least wait before campaigning')
    .option('--handover-timeout <duration>', 'how long a stopping primary waits for a standby')
    .option('--verify-interval <duration>', 'standby verification interval (default 30s)')
    .option('--verify-fraction <f>', 'fraction of shards per verification round (default 0.1)')
    .option('--max-sync-gap <n>', 'entries behind past which a standby must full-sync (1000)')
    .option('--max-mismatches <n>', 'mismatches per round past which a full sync is done (100)')
    .option('--log-level <level>', 'pino log level (env UNDERSTUDY_LOG_LEVEL)')
    .option(
      '--nats-user <user>',
      'NATS user; the password comes from UNDERSTUDY_NATS_PASSWORD(_FILE)',
    )
    .option('--nats-password-file <file>', 'file holding the NATS password')
    .option('--nats-token-file <file>', 'file holding the NATS token')
    .option('--nats-creds-file <file>', 'NATS credentials file (JWT + nkey seed)')
    .option('--nats-nkey-seed-file <file>', 'file holding an NATS nkey seed')
    .option('--nats-tls-ca <file>', 'CA certificate for NATS TLS')
    .option('--nats-tls-cert <file>', 'client certificate for NATS TLS')
    .option('--nats-tls-key <file>', 'client key for NATS TLS')
    .option(
      '--etcd-user <user>',
      'etcd user; the password comes from UNDERSTUDY_ETCD_PASSWORD(_FILE)',
    )
    .option('--etcd-password-file <file>', 'file holding the etcd password')
    .option('--etcd-tls-ca <file>', 'CA certificate for etcd TLS')
    .option('--etcd-tls-cert <file>', 'client certificate for etcd TLS')
    .option('--etcd-tls-key <file>', 'client key for etcd TLS')
    .action(async (flags: Record<string, unknown>) => {
      const config = loadNodeConfig(flags);
      const logger = pino({ level: config.logLevel });
      const node = await startNode(config, logger);
      const onSignal = (signal: string): void => {
        logger.info({ event: 'signal', signal }, 'stopping');
        node.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err: String(err) }, 'stop failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
}
