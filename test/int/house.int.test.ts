// The house's import direction: every room of src/ has a rule, and the linter (the real
// eslint.config.js, type-aware as `npm run check` runs it) fails an import that points up.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { rooms } from '../../scripts/houseRooms.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const RULE = 'import-x/no-restricted-paths';

/** The rule ids eslint reports for `file` with `imports` put at its top. */
async function violations(eslint: ESLint, file: string, imports: string): Promise<string[]> {
  const path = join(root, file);
  const [result] = await eslint.lintText(`${imports}\n${readFileSync(path, 'utf8')}`, {
    filePath: path,
  });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('the house', () => {
  it('has a rule for every room of src/', () => {
    const folders = readdirSync(join(root, 'src'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => `src/${entry.name}`)
      .sort();
    const ruled = Object.keys(rooms).filter((room) => room.startsWith('src/'));
    // cli is the top floor: it may import every room, so it needs no rule.
    expect([...ruled, 'src/cli'].sort()).toEqual(folders);
  });

  it('fails an import that points up, and passes the ones that point down', async () => {
    const eslint = new ESLint({ cwd: root });
    const upward: [file: string, imports: string][] = [
      [
        'src/domain/model/limits.ts',
        "import type { NodeRuntime } from '../../node/nodeRuntime.ts';\nexport type P = NodeRuntime;",
      ],
      [
        'machines/masterNode.machine.ts',
        "import { systemClock } from '../src/adapters/systemClock.ts';\nexport const p = systemClock;",
      ],
      [
        'src/adapters/systemClock.ts',
        "import type { NodeStatus } from '../node/nodeStatus.ts';\nexport type P = NodeStatus;",
      ],
      [
        'src/node/deferred.ts',
        "import type { LogItem } from '../tools/log/logSource.ts';\nexport type P = LogItem;",
      ],
      [
        'src/tools/clusterStatus.ts',
        "import { STATUS_EXIT } from '../cli/statusCommand.ts';\nexport const p = STATUS_EXIT;",
      ],
      [
        'src/client/coalescer.ts',
        "import { systemClock } from '../adapters/systemClock.ts';\nexport const p = systemClock;",
      ],
    ];
    for (const [file, imports] of upward) {
      const found = await violations(eslint, file, imports);
      expect(
        found.some((v) => v.startsWith(`${RULE}:`)),
        `${file}: ${found.join('; ')}`,
      ).toBe(true);
    }
    const downward: [file: string, imports: string][] = [
      [
        'src/node/deferred.ts',
        "import type { OpLogEntry } from '../domain/log/entry.ts';\nexport type P = OpLogEntry;",
      ],
      [
        'src/client/nats.ts',
        "import { systemClock as c } from '../adapters/systemClock.ts';\nexport const p = c;",
      ],
    ];
    for (const [file, imports] of downward) {
      expect(await violations(eslint, file, imports), file).toEqual([]);
    }
  }, 180_000);

  it('draws every room in its picture, and PlantUML renders it', () => {
    const source = readFileSync(join(root, 'docs/img/house.puml'), 'utf8');
    const svg = readFileSync(join(root, 'docs/img/house.svg'), 'utf8');
    for (const room of [...Object.keys(rooms), 'src/cli']) {
      expect(source).toContain(`[${room}]`);
      expect(svg).toContain(room);
    }
    if (spawnSync('sh', ['-c', 'command -v plantuml']).status !== 0) {
      console.warn('house picture: plantuml is missing, not rendered (scripts/ensure-deps.sh)');
      return;
    }
    const rendered = spawnSync('plantuml', ['-tsvg', '-pipe'], { input: source, encoding: 'utf8' });
    expect(rendered.status, rendered.stderr).toBe(0);
    for (const room of [...Object.keys(rooms), 'src/cli']) expect(rendered.stdout).toContain(room);
  });
});
