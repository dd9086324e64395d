// The node's side of `understudy checkpoint create`: `POST /admin/checkpoint` on its HTTP server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from './httpServer.ts';
import { allowMethods, sendJson } from './httpRequests.ts';
import type { NodeRuntime } from '../node/nodeRuntime.ts';

/** The path of the checkpoint endpoint. */
export const CHECKPOINT_PATH = '/admin/checkpoint';

/**
 * `POST /admin/checkpoint`: writes a checkpoint of this node's committed state now (staged, read
 * back, checked, published; then retention), whoever the usual writer is. Answers 200 with the
 * `CheckpointInfo`; 409 when the node has no checkpoint store, no state yet, or is not a
 * standby or primary; 500 when the write failed (nothing half written is listed).
 */
export function checkpointRoute(runtime: NodeRuntime): HttpRoute {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!allowMethods(req, res, ['POST'])) return;
    req.resume();
    const checkpointer = runtime.checkpointer;
    if (checkpointer === undefined)
      return sendJson(res, 409, { error: 'this node has no checkpoint store' });
    if (runtime.role !== 'standby' && runtime.role !== 'primary')
      return sendJson(res, 409, { error: `the node is ${runtime.role}` });
    if (runtime.store.appliedSeq === 0)
      return sendJson(res, 409, { error: 'the node has no state to checkpoint' });
    try {
      sendJson(res, 200, await checkpointer.writeNow());
    } catch (err) {
      sendJson(res, 500, { error: String(err) });
    }
  };
}
