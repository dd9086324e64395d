// `--groups`: the setting's bounds, and the refusal a node with another count than its cluster's
// gets (the message an operator reads in the log line and on stderr).
import { describe, expect, it } from 'vitest';
import { ConfigError, loadNodeConfig } from '../../src/config/config.ts';
import { checkGroupCount, GroupCountMismatchError } from '../../src/node/groupCountCheck.ts';

const base = { id: 'n1', cluster: 'main' };

describe('--groups', () => {
  it('defaults to 1; takes 1 to 1024 from the flag or UNDERSTUDY_GROUPS; refuses 0, 1025 and 2.5 naming the flag', () => {
    expect(loadNodeConfig(base, {}).groups).toBe(1);
    expect(loadNodeConfig({ ...base, groups: '4' }, {}).groups).toBe(4);
    expect(loadNodeConfig(base, { UNDERSTUDY_GROUPS: '1024' }).groups).toBe(1024);
    for (const bad of ['0', '1025', '2.5']) {
      expect(() => loadNodeConfig({ ...base, groups: bad }, {})).toThrow(ConfigError);
      expect(() => loadNodeConfig({ ...base, groups: bad }, {})).toThrow(
        /--groups \(UNDERSTUDY_GROUPS\)/,
      );
    }
  });

  it("a node whose count is not the cluster's is refused with both counts and where the record is", () => {
    expect(() => checkGroupCount('main', 4, 4, '/understudy/main/groups')).not.toThrow();
    let caught: unknown;
    try {
      checkGroupCount('main', 2, 4, '/understudy/main/groups');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GroupCountMismatchError);
    const err = caught as GroupCountMismatchError;
    expect(err.code).toBe('GROUP_COUNT_MISMATCH');
    expect(err.message).toBe(
      'this node runs with --groups 2 (UNDERSTUDY_GROUPS), but cluster main was created with 4 groups (recorded at /understudy/main/groups): start it with --groups 4; the count of a cluster cannot change',
    );
  });
});
