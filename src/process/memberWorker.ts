/**
 * A group's member in a worker thread of its own (`--group-threads worker`): started by
 * memberThread.ts with {@link MemberWorkerData}, it opens its own connections, runs its own
 * runtime on its own event loop and heap, and serves its answers (a node's of one group) on a
 * loopback HTTP server the process's server forwards `?group=N` to. Its log lines and
 * inspection records go to the main thread, which writes and sends them as its own.
 */
import { parentPort, threadId, workerData, type MessagePort } from 'node:worker_threads';
import { pino } from 'pino';
import { Waiting } from '../node/waitingFor.ts';
import { hosted, startMember, type StartedMember } from './groupMember.ts';
import { NodeHttpServer } from './httpServer.ts';
import {
  toThreadError,
  type FromMember,
  type MemberWorkerData,
  type ToMember,
} from './memberThreadProtocol.ts';

/** How often a starting member says what it waits for (ms). */
const WAITING_EVERY_MS = 200;

async function runMember(port: MessagePort, data: MemberWorkerData): Promise<void> {
  const post = (message: FromMember): void => port.postMessage(message);
  const { config, group } = data;
  const destination = { write: (line: string): void => post({ type: 'log', line }) };
  const log = pino({ level: config.logLevel }, destination).child({ node: config.id });
  const waiting = new Waiting();
  let said: string | undefined;
  const sayWaiting = setInterval(() => {
    if (waiting.current === said) return;
    said = waiting.current;
    post({ type: 'waiting', what: said });
  }, WAITING_EVERY_MS);
  const inspector = data.inspect
    ? { send: (record: object): void => post({ type: 'inspect', record }) }
    : undefined;
  let member;
  let http;
  try {
    member = await startMember(config, group, {
      groups: config.groups,
      waiting,
      log,
      httpAddress: data.httpAddress,
      inspector,
    });
    http = await NodeHttpServer.listen('127.0.0.1:0');
  } catch (err) {
    clearInterval(sayWaiting);
    await member?.stop().catch(() => undefined);
    post({ type: 'failed', error: toThreadError(err) });
    port.close();
    return;
  }
  clearInterval(sayWaiting);
  http.serveRequests(member.requests);
  answerMain(port, member, http, config.maxLagForPromotion);
  log.info(
    { event: 'memberThreadStarted', group, threadId },
    `group ${group}'s member runs in worker thread ${threadId}`,
  );
  post({ type: 'started', url: http.url });
}

/** Answers the main thread's messages for the started `member`, served by `http`. */
function answerMain(
  port: MessagePort,
  member: StartedMember,
  http: NodeHttpServer,
  maxLagForPromotion: number,
): void {
  const post = (message: FromMember): void => port.postMessage(message);
  const answers = hosted(member, maxLagForPromotion);
  const { runtime } = member;
  port.on('message', (message: ToMember) => {
    switch (message.type) {
      case 'start':
        runtime.start();
        void runtime.whenStopped().then(() => {
          if (runtime.refusal !== undefined) {
            post({ type: 'refused', error: toThreadError(runtime.refusal) });
          }
        });
        return;
      case 'ask':
        void (message.what === 'summary' ? answers.summary() : answers.families()).then((value) =>
          post({ type: 'answer', id: message.id, value }),
        );
        return;
      case 'stop':
        void (async () => {
          await member.stop();
          await http.close();
          post({ type: 'stopped' });
          port.close();
        })();
        return;
    }
  });
}

const data = workerData as MemberWorkerData | null;
if (parentPort !== null && data?.role === 'understudyMember') void runMember(parentPort, data);
