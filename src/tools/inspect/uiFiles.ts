/**
 * The inspect page's files, as the browser gets them. The page's scripts are TypeScript
 * (`ui/*.ts`, checked with `ui/tsconfig.json`); the browser loads them as ES modules
 * (`inspect.js`, `chart.js`, ...). From the build (dist/), `npm run build` has compiled each
 * one beside the page and the file is read as it is. From the sources (`tsx`: tests, a
 * developer's run) there is no `.js`: the `.ts` beside it is compiled on request, one file at
 * a time, with TypeScript's `transpileModule` and the options of `ui/tsconfig.json` (the same
 * compile the build does, see `scripts/build.js`), so both serve the same page.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type TypeScript from 'typescript';

/**
 * The body of the page's file at `path` (absolute, inside the page's directory), or undefined
 * when there is none. A missing `x.js` is compiled from `x.ts` when that exists.
 */
export async function readUiFile(path: string): Promise<Buffer | string | undefined> {
  const body = await readFile(path).catch(() => undefined);
  if (body !== undefined || !path.endsWith('.js')) return body;
  const source = await readFile(`${path.slice(0, -3)}.ts`, 'utf8').catch(() => undefined);
  if (source === undefined) return undefined;
  return compileUiModule(source, path);
}

/** The `ui/*.ts` compiler: TypeScript and the page's compiler options. */
interface UiCompiler {
  readonly ts: typeof TypeScript;
  readonly options: TypeScript.CompilerOptions;
}
let compiler: Promise<UiCompiler> | undefined;

/** TypeScript and the options of `ui/tsconfig.json` (with what it extends), loaded once. */
function loadCompiler(): Promise<UiCompiler> {
  return (compiler ??= import('typescript').then(({ default: ts }) => {
    // TypeScript is a development dependency: only a run from the sources gets here.
    const configPath = fileURLToPath(new URL('./ui/tsconfig.json', import.meta.url));
    const parsed = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(`inspect page: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
      },
    });
    if (parsed === undefined) throw new Error(`inspect page: cannot read ${configPath}`);
    return { ts, options: { ...parsed.options, noEmit: false, sourceMap: false } };
  }));
}

/** `source` (a `ui/*.ts` module) as the ES module the browser loads. */
async function compileUiModule(source: string, fileName: string): Promise<string> {
  const { ts, options } = await loadCompiler();
  return ts.transpileModule(source, {
    fileName: `${fileName.slice(0, -3)}.ts`,
    compilerOptions: options,
  }).outputText;
}
