// `npm run bench -- groupsFill [--quick]`: how full the whole store gets before the first
// refusal for space when the keyspace is split into G groups, each allocating only from its own
// slice of every segment (src/domain/model/segmentSlices.ts). Pure domain, no processes, no
// timing: every figure is a deterministic function of the code.
//
// Storage: 4 storage nodes x 2 segments of 1 GiB (8 GiB); every object has 2 replicas. For G =
// 1, 2, 4, 8 the mount of each segment goes to every group (group g mounts its slice), then
// objects with keys `fill/<seed>/<i>` (uniformly hashed over the 1024 shards, so over the
// groups) and log-uniform sizes from 64 KiB to 4 MiB (a seeded generator) are put, each decided
// and folded by its key's group, until the first put any group refuses (NO_SPACE, or
// NOT_ENOUGH_NODES once no node has a free byte left in that group's slices). The figure is the
// fill then: bytes used over bytes mounted, over all groups. Median over the seeds (and the
// lowest seen); again with objects 16 times smaller (the `Small` figures: 16 times as many
// objects, so the groups' shares of the bytes put are closer to equal). Verdicts: every replica of every group lies inside its group's slice and no two
// replicas overlap across groups; G = 1 fills the store to at least 99 %.
import { decide, type DecideContext } from '../src/domain/decide/decide.ts';
import { fold } from '../src/domain/fold/fold.ts';
import { groupOfKey } from '../src/domain/model/groups.ts';
import { segmentSlice } from '../src/domain/model/segmentSlices.ts';
import { allObjects, emptyState } from '../src/domain/model/state.ts';
import type { Command, MetadataState } from '../src/domain/model/types.ts';
import { verdict, type BenchOutcome } from './lib/report.ts';
import { printTable } from './lib/table.ts';
import { mulberry32 as seeded } from '../src/tools/localCluster/seededRandom.ts';

const NODES = 4;
const SEGMENTS_PER_NODE = 2;
const SEGMENT_SIZE = 2 ** 30;
const REPLICAS = 2;
const MIN_OBJECT = 64 * 1024;
const MAX_OBJECT = 4 * 1024 * 1024;
const GROUP_COUNTS = [1, 2, 4, 8] as const;
const noLeases: DecideContext = { isReadLeased: () => false };

function apply(state: MetadataState, command: Command): MetadataState | string {
  const d = decide(state, command, noLeases);
  if (!d.ok) return d.error.code;
  return fold(state, { seq: state.appliedSeq + 1, epoch: 1, ts: 0, event: d.event });
}

interface FillRun {
  readonly fill: number;
  readonly objects: number;
  readonly refusal: string;
  /** Problems found checking the replicas against the slices (none when right). */
  readonly overlaps: string[];
}

/** Fills G groups until the first refusal (see the header). */
function fillGroups(groups: number, seed: number, scale: number, objectScale: number): FillRun {
  const segmentSize = SEGMENT_SIZE / scale;
  let states: MetadataState[] = Array.from({ length: groups }, () => emptyState());
  for (let n = 0; n < NODES; n++) {
    for (let s = 0; s < SEGMENTS_PER_NODE; s++) {
      states = states.map((state, g) => {
        const mount: Command = {
          type: 'mountSegment',
          segmentId: `node-${n}/seg-${s}`,
          nodeId: `node-${n}`,
          ...segmentSlice(segmentSize, g, groups),
        };
        const next = apply(state, mount);
        if (typeof next === 'string') throw new Error(`mount refused: ${next}`);
        return next;
      });
    }
  }
  const random = seeded(seed);
  let refusal = '';
  let objects = 0;
  for (let i = 0; refusal === ''; i++) {
    const key = `fill/${seed}/${i}`;
    const size = Math.round(
      (MIN_OBJECT * (MAX_OBJECT / MIN_OBJECT) ** random()) / scale / objectScale,
    );
    const g = groupOfKey(key, groups);
    const next = apply(states[g] as MetadataState, {
      type: 'putStart',
      key,
      size,
      replicaNum: REPLICAS,
    });
    if (typeof next === 'string') refusal = next;
    else {
      states[g] = next;
      objects++;
    }
  }
  const used = states.reduce((sum, s) => sum + s.used, 0);
  const capacity = states.reduce((sum, s) => sum + s.capacity, 0);
  return { fill: used / capacity, objects, refusal, overlaps: checkSlices(states, segmentSize) };
}

/** Every replica inside its group's slice; no byte of a segment held by two replicas. */
function checkSlices(states: readonly MetadataState[], segmentSize: number): string[] {
  const problems: string[] = [];
  const ranges = new Map<string, [number, number][]>();
  states.forEach((state, g) => {
    const slice = segmentSlice(segmentSize, g, states.length);
    for (const object of allObjects(state)) {
      for (const r of object.replicas) {
        if (r.offset < slice.base || r.offset + r.length > slice.base + slice.size)
          problems.push(`group ${g}: ${object.key} outside its slice`);
        const list = ranges.get(r.segmentId) ?? [];
        list.push([r.offset, r.offset + r.length]);
        ranges.set(r.segmentId, list);
      }
    }
  });
  for (const [segmentId, list] of ranges) {
    list.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < list.length; i++) {
      if ((list[i] as [number, number])[0] < (list[i - 1] as [number, number])[1])
        problems.push(`segment ${segmentId}: two replicas overlap`);
    }
  }
  return problems;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const pct = (f: number): string => `${(f * 100).toFixed(2)} %`;

export function run(args: string[]): Promise<BenchOutcome> {
  const quick = args.includes('--quick');
  // --quick: segments of 64 MiB and objects scaled alike (the same shape, 16x fewer objects).
  const scale = quick ? 16 : 1;
  const seeds = quick ? [1] : [1, 2, 3, 4, 5, 6, 7];
  console.log(
    `groupsFill: ${NODES} nodes x ${SEGMENTS_PER_NODE} segments of ${SEGMENT_SIZE / scale / 2 ** 20} MiB, ${REPLICAS} replicas, object sizes log-uniform, ${seeds.length} seeds`,
  );
  const figures: Record<string, number> = {};
  const rows: (string | number)[][] = [];
  const problems: string[] = [];
  // Two workloads: the sizes above, and objects 16 times smaller (16 times as many objects).
  for (const { name, objectScale } of [
    { name: '', objectScale: 1 },
    { name: 'Small', objectScale: 16 },
  ]) {
    for (const groups of GROUP_COUNTS) {
      const runs = seeds.map((seed) => fillGroups(groups, seed, scale, objectScale));
      for (const r of runs) problems.push(...r.overlaps);
      const fills = runs.map((r) => r.fill);
      figures[`fill${name}PctG${groups}`] = Number((median(fills) * 100).toFixed(2));
      figures[`minFill${name}PctG${groups}`] = Number((Math.min(...fills) * 100).toFixed(2));
      const kib = (n: number): number => n / scale / objectScale / 1024;
      rows.push([
        `${kib(MIN_OBJECT)}-${kib(MAX_OBJECT)} KiB`,
        groups,
        pct(median(fills)),
        pct(Math.min(...fills)),
        median(runs.map((r) => r.objects)),
        [...new Set(runs.map((r) => r.refusal))].join(', '),
      ]);
    }
  }
  printTable(
    ['objects', 'G', 'fill at first refusal (median)', 'lowest', 'objects put (median)', 'refusal'],
    rows,
  );
  return Promise.resolve({
    figures,
    verdicts: [
      verdict(
        'replicas inside their group slice, none overlapping',
        problems.length === 0,
        problems.slice(0, 3).join('; ') || undefined,
      ),
      verdict('G = 1 fills at least 99 %', (figures['fillPctG1'] ?? 0) >= 99),
    ],
  });
}
