// A Markdown table on stdout: the readable part of a benchmark's output.

/** A cell: text, or a number printed as is (right-aligned). */
export type Cell = string | number | null;

/** Prints a Markdown table; columns holding numbers are right-aligned. */
export function printTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const numeric = headers.map((_, c) => rows.some((row) => typeof row[c] === 'number'));
  const text = (cell: Cell | undefined): string =>
    cell === null || cell === undefined ? '' : String(cell);
  console.log(`| ${headers.join(' | ')} |`);
  console.log(`|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`);
  for (const row of rows) console.log(`| ${headers.map((_, c) => text(row[c])).join(' | ')} |`);
}
