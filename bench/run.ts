// `npm run bench -- NAME [args]`: runs bench/NAME.bench.ts. Each benchmark prints a readable
// table and, as its last stdout line, one JSON object with its figures.
import { readdirSync } from 'node:fs';

const names = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name === undefined || !names.includes(name)) {
  console.error(`usage: npm run bench -- <${names.join('|')}> [args]`);
  process.exit(2);
}
const bench = (await import(`./${name}.bench.ts`)) as { run(args: string[]): Promise<void> };
await bench.run(args);
