/**
 * HTTP endpoints that exist only when a test enables them (`UNDERSTUDY_TEST_HOOKS=1` in the
 * node's environment): they let an end-to-end test inject faults a real deployment must never
 * be able to trigger.
 *
 * - `POST /test/corrupt` with JSON `{key, kind}` (`kind`: replica | size | missing | extra):
 *   corrupts one record of this node's committed state in memory. 200 `{ok: true}`, 400 on a
 *   bad body, 409 when the key does not fit the kind (absent, or present for `extra`).
 * - `POST /test/block` with JSON `{ms}` (1..30000): blocks the event loop that answers it for
 *   `ms`, as a long GC pause or fold would, then answers 200 `{blockedMs}`. With
 *   `--group-threads worker` that is one group member's thread; otherwise the whole process.
 */
import type { IncomingMessage } from 'node:http';
import type { HttpRoute } from './httpServer.ts';
import { allowMethods, HttpRequestError, sendJson as send } from './httpRequests.ts';
import type { NodeRuntime, RuntimeLogger } from '../node/nodeRuntime.ts';
import {
  CORRUPTION_KINDS,
  CorruptionError,
  corruptState,
  type CorruptionKind,
} from '../admin/verification.ts';

/** The environment variable that turns the test hooks on (value `1`). */
export const TEST_HOOKS_ENV = 'UNDERSTUDY_TEST_HOOKS';

/**
 * TEST ONLY: with the test hooks on, `UNDERSTUDY_TEST_SKIP_OPLOG_KEY_CHECK=startup` lets a node
 * start without comparing its OpLog key id with the cluster's, and `=all` also turns off the
 * check made when it passes over a message signed under another key, so a test can show what
 * a node with the wrong key does once it runs (it must never count as caught up).
 */
export const SKIP_OPLOG_KEY_CHECK_ENV = 'UNDERSTUDY_TEST_SKIP_OPLOG_KEY_CHECK';

/** Which checks of the OpLog key id a test skips, if any. */
export function skipOplogKeyCheckForTest(
  env: NodeJS.ProcessEnv = process.env,
): 'startup' | 'all' | undefined {
  if (!testHooksEnabled(env)) return undefined;
  const value = env[SKIP_OPLOG_KEY_CHECK_ENV];
  return value === 'startup' || value === 'all' ? value : undefined;
}

/** The path of the corruption hook. */
export const CORRUPT_PATH = '/test/corrupt';

/** The path of the event-loop block hook. */
export const BLOCK_PATH = '/test/block';

/** Whether `env` enables the test hooks. */
export function testHooksEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[TEST_HOOKS_ENV] === '1';
}

async function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > limit) throw new HttpRequestError(413, `the body is over ${limit} bytes`);
  }
  return body;
}

/** The test-hook routes for `runtime`; empty unless {@link testHooksEnabled}. */
export function testHookRoutes(
  runtime: NodeRuntime,
  logger: Pick<RuntimeLogger, 'warn'>,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, HttpRoute> {
  if (!testHooksEnabled(env)) return {};
  return {
    [CORRUPT_PATH]: async (req, res) => {
      if (!allowMethods(req, res, ['POST'])) return;
      let parsed: { key?: unknown; kind?: unknown };
      try {
        parsed = JSON.parse(await readBody(req)) as { key?: unknown; kind?: unknown };
      } catch {
        return send(res, 400, { error: 'the body must be JSON {key, kind}' });
      }
      const { key, kind } = parsed;
      if (typeof key !== 'string' || !CORRUPTION_KINDS.includes(kind as CorruptionKind)) {
        return send(res, 400, {
          error: `key must be a string, kind one of ${CORRUPTION_KINDS.join(', ')}`,
        });
      }
      try {
        // Corrupts one record of the committed state in memory, as a fault would, to prove
        // verification finds and repairs it.
        const { store } = runtime;
        store.reset(corruptState(store.state, key, kind as CorruptionKind), store.lastStreamSeq);
        logger.warn({ event: 'corrupted', key, kind }, 'test hook corrupted the state');
      } catch (err) {
        if (err instanceof CorruptionError) return send(res, 409, { error: err.message });
        throw err;
      }
      return send(res, 200, { ok: true, appliedSeq: runtime.store.appliedSeq });
    },
    [BLOCK_PATH]: async (req, res) => {
      if (!allowMethods(req, res, ['POST'])) return;
      let ms: unknown;
      try {
        ({ ms } = JSON.parse(await readBody(req)) as { ms?: unknown });
      } catch {
        return send(res, 400, { error: 'the body must be JSON {ms}' });
      }
      if (!Number.isInteger(ms) || (ms as number) < 1 || (ms as number) > 30_000) {
        return send(res, 400, { error: 'ms must be an integer of 1..30000' });
      }
      logger.warn({ event: 'blocking', ms }, 'test hook blocks the event loop');
      const started = performance.now();
      while (performance.now() - started < (ms as number)) {
        // Busy: nothing else runs on this loop meanwhile.
      }
      return send(res, 200, { blockedMs: Math.round(performance.now() - started) });
    },
  };
}
