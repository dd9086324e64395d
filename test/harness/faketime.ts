// libfaketime (Debian's `faketime`) for tests that move a real node's wall clock: the library is
// preloaded into the node's process and reads its offset from a file of that node's, read anew
// at every call, so the test steps the wall clock of a running node by rewriting the file. The
// monotonic clock is left alone, as NTP or an operator stepping the clock would. Tests that need
// it skip, saying why, when it is not installed.
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where libfaketime is: `UNDERSTUDY_LIBFAKETIME`, else Debian's; undefined when absent. */
export function libfaketimePath(): string | undefined {
  const own = process.env['UNDERSTUDY_LIBFAKETIME'];
  if (own !== undefined && own !== '') return existsSync(own) ? own : undefined;
  const lib = '/usr/lib';
  const candidates = existsSync(lib)
    ? readdirSync(lib).map((dir) => join(lib, dir, 'faketime', 'libfaketime.so.1'))
    : [];
  return [...candidates, join(lib, 'faketime', 'libfaketime.so.1')].find((p) => existsSync(p));
}

/** Why wall-clock tests cannot run here, or undefined when they can. */
export function libfaketimeMissing(): string | undefined {
  return libfaketimePath() === undefined
    ? "no libfaketime: install Debian's `faketime` (scripts/ensure-deps.sh does as root) or set UNDERSTUDY_LIBFAKETIME"
    : undefined;
}

/**
 * One wall-clock offset file per node, in a folder of its own. `env(id)` is what that node's
 * process needs; `set(id, offset)` steps its wall clock (`'+2h'`, `'-90m'`, `'+0'`, as
 * libfaketime's `FAKETIME` reads them). Disposing it deletes the folder.
 */
export class FakeWallClocks implements Disposable {
  readonly #dir = mkdtempSync(join(tmpdir(), 'understudy-faketime-'));
  readonly #lib: string;

  constructor() {
    const lib = libfaketimePath();
    if (lib === undefined) throw new Error(libfaketimeMissing());
    this.#lib = lib;
  }

  /** The environment of node `id`: its wall clock at the offset of its file (`+0` at first). */
  env(id: string): Record<string, string> {
    const file = this.#file(id);
    if (!existsSync(file)) this.set(id, '+0');
    return {
      LD_PRELOAD: this.#lib,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
  }

  /** Steps node `id`'s wall clock to `offset` from the true time; its monotonic clock runs on. */
  set(id: string, offset: string): void {
    // Whole or not at all: the node may read the file at any moment.
    const part = `${this.#file(id)}.part`;
    writeFileSync(part, `${offset}\n`);
    renameSync(part, this.#file(id));
  }

  #file(id: string): string {
    return join(this.#dir, `${id}.faketime`);
  }

  [Symbol.dispose](): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
