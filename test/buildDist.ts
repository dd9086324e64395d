// vitest global setup: builds dist/ when a source is newer than the last build, so the tests
// that run the `understudy` command (bin/understudy.js runs dist/) never run stale code.
import { build } from '../scripts/build.js';

export default function setup(): void {
  build({ ifStale: true });
}
