import type { Elector } from '../../src/ports/elector.ts';
import type { InspectionTape } from '../../src/observe/inspectionTape.ts';
import type { NodeRuntime } from '../../src/node/nodeRuntime.ts';
import type { NodeClock } from './nodeClock.ts';

/** One node of the simulated cluster, across its incarnations, and the faults it is in. */
export interface NodeSlot {
  readonly id: string;
  clock: NodeClock;
  runtime: NodeRuntime | undefined;
  elector: Elector | undefined;
  crashed: boolean;
  paused: boolean;
  etcdCut: boolean;
  natsCut: boolean;
  acksCut: boolean;
  /** Requests that reached the node while it was paused. */
  held: Array<() => void>;
  /** Bumped on every restart: answers of an older incarnation are dropped. */
  incarnation: number;
  /** The node's machine events, every incarnation (written out when a schedule fails). */
  readonly tape: InspectionTape;
  /** Its clock ran beyond the margin the lease design tolerates ({@link SimFaults.drift}). */
  drifted: boolean;
  /** The OpLog key id it runs with ({@link SimWorld.wrongKey}). */
  keyId: string;
}
