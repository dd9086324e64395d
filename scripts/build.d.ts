// Types of scripts/build.js for the TypeScript that imports it (test/buildDist.ts).
export function buildIsFresh(): boolean;
export function build(options?: { readonly ifStale?: boolean }): boolean;
