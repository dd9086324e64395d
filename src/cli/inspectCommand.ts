// `understudy inspect`: a local page with every node's machine live, or recordings replayed.
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { Etcd3 } from 'etcd3';
import { masterNodeMachine } from '../../machines/masterNode.machine.ts';
import { ClusterSource } from '../tools/inspect/clusterSource.ts';
import { readRecording } from '../observe/flightRecorder.ts';
import { InspectHub } from '../tools/inspect/inspectHub.ts';
import type { InspectionRecord } from '../observe/inspectionRecord.ts';
import { InspectServer } from '../tools/inspect/inspectServer.ts';
import { ConfigError } from '../config/settings.ts';
import { GROUP_OPTION_HELP, groupFlag, namedGroupCluster } from './groupOption.ts';
import {
  addClusterOptions,
  durationFlag,
  loadClusterAccess,
  openClusterEtcd,
} from './clusterOptions.ts';

/** Exit codes of `understudy inspect`. */
export const INSPECT_EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** The page's default address: loopback only. */
export const DEFAULT_INSPECT_HTTP = '127.0.0.1:9300';

/**
 * The records of several recordings on one timeline: sorted by time (each file's own order
 * kept for equal times). A record without a node is named after its file.
 */
export function mergeRecordings(files: readonly string[]): {
  records: InspectionRecord[];
  skippedLines: number;
} {
  let skippedLines = 0;
  const all = files.flatMap((file, fileIndex) => {
    const recording = readRecording(file);
    skippedLines += recording.skippedLines;
    const fallback = basename(file).replace(/\.ndjson$/, '');
    return recording.records.map((record, i) => ({
      record: typeof record.node === 'string' ? record : { ...record, node: fallback },
      key: [Number(record.createdAt), fileIndex, i] as const,
    }));
  });
  all.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2]);
  return { records: all.map((a) => a.record), skippedLines };
}

/**
 * `understudy inspect`: serves the inspect page (on 127.0.0.1:9300 unless `--http` says
 * otherwise) until Ctrl-C. Live: finds the cluster's nodes in etcd and follows each one's
 * `/inspect/events`; also receives the standard inspection protocol over WebSocket on the
 * same address. `--replay FILE...`: the recordings of `node --record` on one timeline.
 */
export function registerInspectCommand(program: Command): void {
  const command = program
    .command('inspect')
    .description(
      'serve a local page with every node machine live (state chart, timeline, epoch, lag), or replay recordings',
    );
  addClusterOptions(command)
    .option('--http <host:port>', 'page address (loopback by default)', DEFAULT_INSPECT_HTTP)
    .option('--replay <files...>', 'replay `node --record` files on one timeline instead')
    .option('--interval <duration>', 'how often etcd and node status are read (live)', '1s')
    .option('--group <n>', `${GROUP_OPTION_HELP} (live: one group's machines)`)
    .addHelpText(
      'after',
      [
        '',
        'Open the printed URL in a browser. Live, inspector clients may also send the standard',
        'inspection protocol to ws://<the same address> (@statelyai/inspect createWebSocketInspector,',
        'or `understudy node --inspect ws://...`). oplog.progress events are sampled (one a second',
        'per node; each shown one says how many it stands for).',
        '',
        'Exit codes: 0 stopped by Ctrl-C; 1 cannot listen or read a recording; 2 usage.',
      ].join('\n'),
    )
    .action(async (flags: Record<string, unknown>) => {
      let client: Etcd3 | undefined;
      let source: ClusterSource | undefined;
      let server: InspectServer | undefined;
      try {
        const replay = flags['replay'] as string[] | undefined;
        const address = String(flags['http']);
        let hub: InspectHub;
        if (replay !== undefined) {
          const { records, skippedLines } = mergeRecordings(replay);
          hub = new InspectHub({ mode: 'replay', title: 'replay', sources: replay });
          for (const record of records) hub.add(record);
          process.stderr.write(
            `understudy inspect: ${records.length} records from ${replay.length} file(s)` +
              (skippedLines > 0 ? `; ${skippedLines} lines were not records` : '') +
              '\n',
          );
        } else {
          const access = loadClusterAccess(flags);
          const intervalMs = durationFlag(flags['interval'], 'interval', 1000);
          const group = groupFlag(flags['group']);
          client = await openClusterEtcd(access);
          // Group N of a cluster of several runs under its own name; nothing is read here, so
          // that the page comes up (and says what is wrong) while etcd cannot be reached.
          const cluster = namedGroupCluster(access.cluster, group);
          hub = new InspectHub({
            mode: 'live',
            title:
              group === undefined
                ? `cluster ${access.cluster}`
                : `cluster ${access.cluster}, group ${group}`,
          });
          source = new ClusterSource({ client, cluster, group, hub, intervalMs });
        }
        const streamed = (node: string): boolean =>
          hub.nodes.some((n) => n.id === node && n.connected);
        server = await InspectServer.listen(address, {
          hub,
          machines: { masterNode: masterNodeMachine },
          acceptWebSocket: replay === undefined,
          streamedNode: streamed,
        });
        source?.start();
        const host = new URL(server.url).hostname;
        if (host !== '127.0.0.1' && host !== '[::1]' && host !== 'localhost') {
          process.stderr.write(
            `understudy inspect: listening on ${host}: anyone who reaches it sees the cluster\n`,
          );
        }
        process.stdout.write(`understudy inspect: ${server.url}/\n`);
        const stop = (): void => {
          void (async () => {
            await source?.stop();
            await server?.close();
            client?.close();
            process.exit(INSPECT_EXIT.ok);
          })();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (err) {
        process.stderr.write(
          `understudy inspect: ${err instanceof Error ? err.message : String(err)}\n`,
        );
        await source?.stop();
        await server?.close();
        client?.close();
        process.exitCode = err instanceof ConfigError ? INSPECT_EXIT.usage : INSPECT_EXIT.failed;
      }
    });
}
