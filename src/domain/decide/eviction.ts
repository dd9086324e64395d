import type { DecideContext } from './decide.ts';
import { allObjects } from '../model/state.ts';
import type { MetadataEvent, MetadataState, ObjectRecord } from '../model/types.ts';

/** When to evict: fractions of the total mounted capacity. */
export interface EvictionPolicy {
  /** Evict once used / capacity reaches this (0..1]. */
  readonly highWater: number;
  /** Evict until used / capacity would be below this (0..highWater). */
  readonly lowWater: number;
}

export const DEFAULT_EVICTION_POLICY: EvictionPolicy = Object.freeze({
  highWater: 0.9,
  lowWater: 0.8,
});

/**
 * Chooses eviction victims. When `used / capacity >= highWater`, picks complete objects that
 * are not read-leased, oldest `lastSeq` first (ties by key), until usage would be below
 * `lowWater`, and returns the EVICTION event carrying them. Returns null below the high-water
 * mark, with no capacity, or when nothing is evictable. Never mutates `state`.
 */
export function decideEviction(
  state: MetadataState,
  policy: EvictionPolicy,
  ctx: DecideContext,
): MetadataEvent | null {
  if (state.capacity <= 0 || state.used / state.capacity < policy.highWater) return null;
  const target = policy.lowWater * state.capacity;
  const candidates: ObjectRecord[] = [];
  for (const record of allObjects(state)) {
    if (record.replicas.every((r) => r.status === 'complete') && !ctx.isReadLeased(record.key)) {
      candidates.push(record);
    }
  }
  candidates.sort((a, b) => a.lastSeq - b.lastSeq || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const keys: string[] = [];
  let used = state.used;
  for (const record of candidates) {
    if (used < target) break;
    keys.push(record.key);
    used -= record.replicas.reduce((n, r) => n + r.length, 0);
  }
  return keys.length === 0 ? null : { op: 'EVICTION', keys };
}
