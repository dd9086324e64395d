/**
 * The main thread's side of a group member running in a worker thread of its own
 * (`--group-threads worker`, memberWorker.ts): a {@link HostedGroup} whose requests are
 * forwarded to the worker's loopback HTTP server and whose summary and metric families are asked
 * by message. The worker has its own heap, GC and event loop: one group's full GC or long fold
 * does not stall the others' leases, and a process's groups use every core.
 */
import { Agent, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { Worker } from 'node:worker_threads';
import type { NodeConfig } from '../config/config.ts';
import type { MetricFamily } from '../observe/prometheusText.ts';
import type { GroupSummary, HostedGroup } from './groupRequests.ts';
import {
  fromThreadError,
  type FromMember,
  type MemberWorkerData,
  type ToMember,
} from './memberThreadProtocol.ts';

/** What the main thread does with what a member thread reports. */
export interface MemberThreadSinks {
  /** A log line as the member's pino wrote it. */
  readonly log: (line: string) => void;
  /** An inspection record (only when the process has an inspector). */
  readonly inspect: ((record: object) => void) | undefined;
  /** What the member waits for while it starts. */
  readonly waiting: (group: number, what: string | undefined) => void;
  /** The member's runtime stopped itself with a refusal. */
  readonly refused: (err: Error) => void;
  /** The worker failed (an error nobody caught there): the process is to end. */
  readonly crashed: (err: unknown) => void;
}

/** The worker of one member: memberWorker.js beside this module (nodes run from dist/). */
function memberWorker(data: MemberWorkerData): Worker {
  return new Worker(new URL('./memberWorker.js', import.meta.url), { workerData: data });
}

/** A group's member in a worker thread, as the process's HTTP server asks it. */
export class MemberThread implements HostedGroup {
  readonly #worker: Worker;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #asked = new Map<number, (value: GroupSummary | MetricFamily[]) => void>();
  #nextAsk = 0;
  #stopping: Promise<void> | undefined;
  #onStopped: (() => void) | undefined;

  /** The worker's loopback HTTP server (empty until it started). */
  #url = '';

  private constructor(
    worker: Worker,
    readonly group: number,
    readonly cluster: string,
  ) {
    this.#worker = worker;
  }

  /**
   * Starts the member of `group` in a worker thread: resolves once it has connected and
   * serves (its runtime not yet started: {@link startRuntime}); rejects with its start-up
   * failure (of the same class as in-thread, for the errors the node command tells apart).
   */
  static start(
    config: NodeConfig,
    group: number,
    cluster: string,
    httpAddress: string,
    sinks: MemberThreadSinks,
  ): Promise<MemberThread> {
    const worker = memberWorker({
      role: 'understudyMember',
      config,
      group,
      httpAddress,
      inspect: sinks.inspect !== undefined,
    });
    return new MemberThread(worker, group, cluster).#run(sinks);
  }

  #run(sinks: MemberThreadSinks): Promise<MemberThread> {
    const worker = this.#worker;
    return new Promise<MemberThread>((resolve, reject) => {
      let started = false;
      worker.on('message', (message: FromMember) => {
        switch (message.type) {
          case 'log':
            return sinks.log(message.line);
          case 'inspect':
            return sinks.inspect?.(message.record);
          case 'waiting':
            return sinks.waiting(this.group, message.what);
          case 'started':
            started = true;
            this.#url = message.url;
            return resolve(this);
          case 'failed':
            void worker.terminate();
            return reject(fromThreadError(message.error));
          case 'refused':
            return sinks.refused(fromThreadError(message.error));
          case 'answer': {
            const answer = this.#asked.get(message.id);
            this.#asked.delete(message.id);
            return answer?.(message.value);
          }
          case 'stopped':
            return this.#onStopped?.();
        }
      });
      worker.on('error', (err) => {
        if (started) sinks.crashed(err);
        else reject(err);
      });
      worker.on('exit', (code) => {
        if (!started) reject(new Error(`group ${this.group}'s thread exited (${code})`));
        this.#onStopped?.();
      });
    });
  }

  #post(message: ToMember): void {
    this.#worker.postMessage(message);
  }

  #ask(what: 'summary' | 'families'): Promise<GroupSummary | MetricFamily[]> {
    const id = this.#nextAsk++;
    return new Promise((resolve) => {
      this.#asked.set(id, resolve);
      this.#post({ type: 'ask', id, what });
    });
  }

  /** Starts the member's runtime (its machine). */
  startRuntime(): void {
    this.#post({ type: 'start' });
  }

  summary(): Promise<GroupSummary> {
    return this.#ask('summary') as Promise<GroupSummary>;
  }

  families(): Promise<MetricFamily[]> {
    return this.#ask('families') as Promise<MetricFamily[]>;
  }

  /** Forwards the request to the member's own server and its answer back, as they stream. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const forwarded = request(
        new URL(`${url.pathname}${url.search}`, this.#url),
        { method: req.method, headers: req.headers, agent: this.#agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.once('end', () => resolve());
          answer.once('error', () => resolve());
        },
      );
      forwarded.once('error', reject);
      // The asker went away (an event stream it stopped reading): so does the forwarded request.
      res.once('close', () => {
        forwarded.destroy();
        resolve();
      });
      req.pipe(forwarded);
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** Stops the member (a primary hands over) and ends its thread. Idempotent. */
  stop(): Promise<void> {
    return (this.#stopping ??= new Promise<void>((resolve) => {
      this.#onStopped = resolve;
      this.#post({ type: 'stop' });
    }).then(async () => {
      this.#agent.destroy();
      await this.#worker.terminate();
    }));
  }
}
