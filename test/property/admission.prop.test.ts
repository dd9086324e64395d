// The admission rule (domain/log/admission.ts): a log written by elected primaries, with foreign
// entries slipped in anywhere, admits exactly the primaries' entries.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admit, type ElectionClaim } from '../../src/domain/log/admission.ts';
import type { LoggedEvent } from '../../src/domain/model/types.ts';
import { propRuns } from './runs.ts';

/** A log of `terms` (each: its epoch's node and how many entries it wrote after its fence). */
function primariesLog(terms: readonly { node: string; entries: number }[]): {
  log: LoggedEvent[];
  elections: ElectionClaim[];
} {
  const log: LoggedEvent[] = [];
  const elections: ElectionClaim[] = [];
  let epoch = 0;
  for (const term of terms) {
    epoch += 1 + (log.length % 3); // epochs rise, with gaps (revisions of other writes)
    elections.push({ epoch, nodeId: term.node });
    log.push({
      seq: log.length + 1,
      epoch,
      ts: 0,
      event: { op: 'EPOCH', epoch, nodeId: term.node },
    });
    for (let i = 0; i < term.entries; i++) {
      log.push({
        seq: log.length + 1,
        epoch,
        ts: 0,
        event: { op: 'REMOVE', key: `k${log.length}` },
      });
    }
  }
  return { log, elections };
}

const isElected =
  (elections: readonly ElectionClaim[]) =>
  (claim: ElectionClaim): boolean =>
    elections.some((e) => e.epoch === claim.epoch && e.nodeId === claim.nodeId);

const termsArb = fc.array(
  fc.record({ node: fc.constantFrom('n1', 'n2', 'n3'), entries: fc.nat(5) }),
  { minLength: 1, maxLength: 6 },
);

/** What an outsider (or a stale writer) could publish, relative to the epoch current there. */
const forgeryArb = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom(
    'epochAbove',
    'epochBelow',
    'fenceUnelected',
    'fenceReplayed',
    'fenceMisstamped',
  ),
  delta: fc.integer({ min: 1, max: 1_000_000_000 }),
  seq: fc.integer({ min: 1, max: 1_000_000 }),
});

describe('admission (property)', () => {
  it("admits exactly the elected primaries' entries, whatever foreign entries are slipped in where", () => {
    fc.assert(
      fc.property(termsArb, fc.array(forgeryArb, { maxLength: 8 }), (terms, forgeries) => {
        const { log, elections } = primariesLog(terms);
        const mixed: LoggedEvent[] = [...log];
        const genuine = new Set<LoggedEvent>(log);
        const inserts = [...forgeries].sort(
          (a, b) => (a.at % (log.length + 1)) - (b.at % (log.length + 1)),
        );
        let offset = 0;
        for (const f of inserts) {
          const at = (f.at % (log.length + 1)) + offset;
          // The epoch current where it lands: that of the last real fence before it (a forged
          // one inserted earlier is not: a forgery built on it could be a real election's claim).
          const current =
            [...mixed.slice(0, at)].reverse().find((e) => genuine.has(e) && e.event.op === 'EPOCH')
              ?.epoch ?? 0;
          const event: LoggedEvent = (() => {
            switch (f.kind) {
              case 'epochAbove':
                return {
                  seq: f.seq,
                  epoch: current + f.delta,
                  ts: 0,
                  event: { op: 'REMOVE', key: 'x' },
                };
              case 'epochBelow':
                return {
                  seq: f.seq,
                  epoch: current - f.delta,
                  ts: 0,
                  event: { op: 'REMOVE', key: 'x' },
                };
              case 'fenceUnelected': {
                const epoch = current + f.delta;
                return {
                  seq: f.seq,
                  epoch,
                  ts: 0,
                  event: { op: 'EPOCH', epoch, nodeId: 'intruder' },
                };
              }
              case 'fenceReplayed': {
                // A real election's fence again, once a later one counts (or the same epoch).
                const epoch = current;
                const nodeId = elections.find((e) => e.epoch === epoch)?.nodeId ?? 'n1';
                return { seq: f.seq, epoch, ts: 0, event: { op: 'EPOCH', epoch, nodeId } };
              }
              case 'fenceMisstamped': {
                const epoch = current + f.delta;
                return {
                  seq: f.seq,
                  epoch: epoch + 1,
                  ts: 0,
                  event: { op: 'EPOCH', epoch, nodeId: 'n1' },
                };
              }
            }
          })();
          mixed.splice(at, 0, event);
          offset++;
        }
        const { admitted, foreign } = admit(0, mixed, isElected(elections));
        expect(admitted).toEqual(log);
        expect(foreign).toHaveLength(forgeries.length);
        for (const f of foreign) expect(f.why).not.toBe('');
      }),
      { numRuns: propRuns(500) },
    );
  });
});
