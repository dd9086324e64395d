// Inspection records (named by node), the oplog.progress sampler, the flight recorder's
// bounds and the WebSocket clients' naming.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { assign, createActor, createMachine } from 'xstate';
import { FlightRecorder, readRecording } from '../../src/observe/flightRecorder.ts';
import type { InspectionRecord } from '../../src/observe/inspectionRecord.ts';
import { NodeInspection } from '../../src/observe/nodeInspection.ts';
import { recordFromClient } from '../../src/tools/inspect/inspectServer.ts';
import { propRuns } from '../property/runs.ts';

/** A small machine with the node's chatty event: progress moves it on once it reaches 100. */
const toy = createMachine({
  id: 'masterNode',
  types: {} as {
    context: { appliedSeq: number };
    events: { type: 'oplog.progress'; appliedSeq: number } | { type: 'go' };
  },
  context: { appliedSeq: 0 },
  initial: 'following',
  states: {
    following: {
      on: {
        'oplog.progress': [
          { guard: ({ event }) => event.appliedSeq >= 100, target: 'caughtUp' },
          { actions: assign({ appliedSeq: ({ event }) => event.appliedSeq }) },
        ],
        go: 'caughtUp',
      },
    },
    caughtUp: {
      on: {
        'oplog.progress': { actions: assign({ appliedSeq: ({ event }) => event.appliedSeq }) },
      },
    },
  },
});

function run(events: readonly { at: number; seq?: number }[]): InspectionRecord[] {
  let now = 0;
  const inspection = new NodeInspection({ nodeId: 'n1', now: () => now });
  const records: InspectionRecord[] = [];
  inspection.subscribe((r) => records.push(r));
  const actor = createActor(toy, { id: 'n1/masterNode', inspect: inspection.inspect }).start();
  for (const e of events) {
    now = e.at;
    actor.send(
      e.seq === undefined ? { type: 'go' } : { type: 'oplog.progress', appliedSeq: e.seq },
    );
  }
  inspection.flush();
  actor.stop();
  return records;
}

const progressEvents = (records: readonly InspectionRecord[]): InspectionRecord[] =>
  records.filter((r) => r.type === '@xstate.event' && r.event?.type === 'oplog.progress');

describe('inspection records', () => {
  it('name every actor by its node', () => {
    const records = run([{ at: 0, seq: 1 }]);
    const root = records.find((r) => r.type === '@xstate.actor');
    expect(root?.name).toBe('n1/masterNode');
    expect(root?.sessionId).toMatch(/^n1\/x:\d+$/);
    expect(root?.node).toBe('n1');
    expect(JSON.parse(root?.definition ?? '{}')).toMatchObject({ id: 'masterNode' });
    for (const r of records) {
      expect(r.sessionId.startsWith('n1/')).toBe(true);
      expect(r._version).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('sample oplog.progress: one a second, never one that changes state, each counting those it stands for', () => {
    // Ten progress reports in 900 ms, then another event.
    const events = [
      ...Array.from({ length: 10 }, (_, i) => ({ at: i * 100, seq: i + 1 })),
      { at: 950 },
    ];
    const records = run(events);
    const progress = progressEvents(records);
    // The first at once, the last one held back before `go` (standing for the eight between).
    expect(progress.map((r) => r.event?.['appliedSeq'])).toEqual([1, 10]);
    expect(progress.map((r) => r.folded ?? 0)).toEqual([0, 8]);
    // Its snapshot shows the latest values.
    const snapshots = records.filter((r) => r.type === '@xstate.snapshot');
    expect(
      snapshots.some((r) => (r.snapshot?.context as { appliedSeq: number }).appliedSeq === 10),
    ).toBe(true);

    // A progress report that changes the state passes at once, however soon.
    const moved = run([
      { at: 0, seq: 1 },
      { at: 10, seq: 100 },
    ]);
    expect(progressEvents(moved).map((r) => r.event?.['appliedSeq'])).toEqual([1, 100]);
    expect(
      moved.some((r) => r.type === '@xstate.snapshot' && r.snapshot?.value === 'caughtUp'),
    ).toBe(true);
  });

  it('sampling drops nothing uncounted: the passed reports stand for every one sent', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 1500 }), go: fc.boolean() }), {
          maxLength: 60,
        }),
        (steps) => {
          let at = 0;
          let seq = 0;
          const events = steps.map((s) => {
            at += s.gap;
            return s.go ? { at } : { at, seq: Math.min(99, ++seq) };
          });
          const sent = events.filter((e) => e.seq !== undefined).length;
          const passed = progressEvents(run(events));
          expect(passed.reduce((n, r) => n + 1 + (r.folded ?? 0), 0)).toBe(sent);
          // At most one per second, besides the one passed before each other event and at the end.
          const others = events.length - sent;
          expect(passed.length).toBeLessThanOrEqual(Math.floor(at / 1000) + 1 + others + 1);
        },
      ),
      { numRuns: propRuns() },
    );
  });
});

describe('the flight recorder', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps FILE and FILE.1 under the cap; each new file starts with the root actor', () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-recorder-'));
    const path = join(dir, 'n1.ndjson');
    writeFileSync(path, '{"left":"by an earlier run"}\n');
    const records = run(Array.from({ length: 400 }, (_, i) => ({ at: i * 1000, seq: i % 99 })));
    const header = records.find((r) => r.type === '@xstate.actor')!;
    const maxBytes = 4096;
    const recorder = new FlightRecorder(path, { maxBytes, header: () => [header] });
    // The earlier run's file was kept as FILE.1.
    expect(readFileSync(`${path}.1`, 'utf8')).toContain('earlier run');
    for (const r of records) recorder.write(r);
    recorder.close();
    for (const file of [path, `${path}.1`]) {
      expect(statSync(file).size).toBeLessThanOrEqual(maxBytes);
      const first = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]!) as InspectionRecord;
      expect(first.type).toBe('@xstate.actor');
      expect(first.name).toBe('n1/masterNode');
    }
    const read = readRecording(path);
    expect(read.skippedLines).toBe(0);
    // The newest records are kept, in order.
    expect(read.records.at(-1)).toEqual(records.at(-1));
    const times = read.records
      .filter((r) => r.type !== '@xstate.actor')
      .map((r) => Number(r.createdAt));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('reads past a line cut short (a kill -9 mid-write)', () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-recorder-'));
    const path = join(dir, 'n1.ndjson');
    const [first] = run([{ at: 0, seq: 1 }]);
    writeFileSync(path, `${JSON.stringify(first)}\n{"type":"@xstate.snap`);
    expect(readRecording(path)).toEqual({ records: [first], skippedLines: 1 });
  });
});

describe('records from WebSocket inspector clients', () => {
  it("keep a node's own names and prefix anyone else's with the connection", () => {
    const ours = recordFromClient(
      {
        type: '@xstate.actor',
        sessionId: 'n2/x:0',
        name: 'n2/masterNode',
        createdAt: '5',
        _version: '0.7.2',
      },
      'ws1',
    );
    expect(ours).toMatchObject({ sessionId: 'n2/x:0', name: 'n2/masterNode', node: 'n2' });
    const theirs = recordFromClient(
      {
        type: '@xstate.event',
        sessionId: 'x:3',
        sourceId: 'x:1',
        rootId: 'x:0',
        createdAt: 'soon',
      },
      'ws4',
    );
    expect(theirs).toMatchObject({
      sessionId: 'ws4/x:3',
      sourceId: 'ws4/x:1',
      rootId: 'ws4/x:0',
      node: 'ws4',
    });
    expect(Number(theirs?.createdAt)).toBeGreaterThan(0);
    expect(
      recordFromClient({ type: '@xstate.microstep', sessionId: 'x:0' }, 'ws1'),
    ).toBeUndefined();
    expect(recordFromClient('not an object', 'ws1')).toBeUndefined();
  });
});
