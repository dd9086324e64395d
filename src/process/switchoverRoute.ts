// The node's side of `understudy switchover`: `POST /admin/switchover[?to=NODE]` on its HTTP
// server, and the peer probe a switching primary uses to see that its target caught up.
import { get as httpGet, type IncomingMessage, type ServerResponse } from 'node:http';
import type { MemberRecord } from '../ports/elector.ts';
import type { HttpRoute } from './httpServer.ts';
import { allowMethods, sendJson } from './httpRequests.ts';
import { SwitchoverError, type NodeRuntime, type SwitchoverFailure } from '../node/nodeRuntime.ts';

/** The path of the switchover endpoint. */
export const SWITCHOVER_PATH = '/admin/switchover';

/** HTTP status for each refusal: 409 for "not now / not here", 404 for an unknown target. */
const STATUS_OF: Record<SwitchoverFailure, number> = {
  notPrimary: 409,
  targetIsSelf: 409,
  unknownTarget: 404,
  targetNotReady: 409,
  handoverFailed: 500,
};

/**
 * `POST /admin/switchover[?to=NODE]`: asks this node (it must be the primary) to hand over and
 * stay up as a standby. Answers 200 with the {@link SwitchoverResult} once the leader key is
 * gone; 409/404 with `{error, reason}` when refused (the node still serves); 500 when the
 * handover failed; 405 for any method but POST.
 */
export function switchoverRoute(runtime: NodeRuntime): HttpRoute {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (!allowMethods(req, res, ['POST'])) return;
    req.resume();
    const to = url.searchParams.get('to');
    try {
      const result = await runtime.switchover(to === null || to === '' ? undefined : to);
      sendJson(res, 200, result);
    } catch (err) {
      if (err instanceof SwitchoverError) {
        sendJson(res, STATUS_OF[err.reason], { error: err.message, reason: err.reason });
      } else {
        sendJson(res, 500, { error: String(err), reason: 'handoverFailed' });
      }
    }
  };
}

/**
 * Reads a peer's role and applied seq from its `/status` (at its member record's address; of
 * its member of `group` when its process hosts several groups: `/status?group=N`).
 * Rejects when the peer does not answer 200 with JSON, or stays silent for `timeoutMs`. Uses
 * `node:http`, which the node has loaded already: the first `fetch` of a process loads undici
 * (measured ~33 ms on an idle machine), and a handover is often a process's first probe.
 */
export function probePeerOverHttp(
  member: MemberRecord,
  timeoutMs = 500,
  group?: number,
): Promise<{ role: string; appliedSeq: number }> {
  const path = group === undefined ? '/status' : `/status?group=${group}`;
  return new Promise((resolve, reject) => {
    const req = httpGet(`${member.address}${path}`, { timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`${member.nodeId}: /status answered ${res.statusCode}`));
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => {
        try {
          const body = JSON.parse(text) as { role?: unknown; appliedSeq?: unknown };
          resolve({
            role: typeof body.role === 'string' ? body.role : '',
            appliedSeq: typeof body.appliedSeq === 'number' ? body.appliedSeq : 0,
          });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    });
    req.on('timeout', () =>
      req.destroy(new Error(`${member.nodeId}: no /status in ${timeoutMs} ms`)),
    );
    req.on('error', reject);
  });
}
