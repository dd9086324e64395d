// How far behind a follower says it is: messages it passed over count (issue 25 fault 3: a node
// whose key was not the cluster's passed over every message and reported lag 0).
import { describe, expect, it } from 'vitest';
import { logEnd } from '../../src/node/actors/followLog.ts';
import type { CommittedStore } from '../../src/node/state/committedStore.ts';
import { metadataStore } from '../fixtures/metadataNode.ts';

const nobodyElected = (): boolean => false;

/** A store full-synced at stream message 10 that then passed over messages 11..`through`. */
function passedOver(through: number): CommittedStore {
  const store = metadataStore();
  store.reset(undefined, 10);
  for (let streamSeq = 11; streamSeq <= through; streamSeq++) {
    store.applyBatch(
      { streamSeq, entries: [], undecodable: 'signature: signed under another key' },
      nobodyElected,
    );
  }
  return store;
}

describe('logEnd (the lag a follower reports)', () => {
  it('a follower that read every message but could fold none of them is behind by one entry per message at least', () => {
    const store = passedOver(15);
    expect(store.lastStreamSeq).toBe(15);
    // The bounds of a node that cannot verify the primary's messages: no entries at all.
    const end = logEnd({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 15 }, store);
    expect(end - store.appliedSeq).toBe(5);
  });

  it('a follower that has not read the last message yet is behind by its last entry, or by the messages if more', () => {
    const store = passedOver(15);
    expect(logEnd({ firstSeq: 1, lastSeq: 40, lastStreamSeq: 20 }, store)).toBe(40);
    expect(logEnd({ firstSeq: 0, lastSeq: 0, lastStreamSeq: 20 }, store)).toBe(10);
  });

  it('a follower that folded the last message is caught up', () => {
    const store = passedOver(10);
    expect(logEnd({ firstSeq: 1, lastSeq: 0, lastStreamSeq: 10 }, store)).toBe(store.appliedSeq);
  });
});
