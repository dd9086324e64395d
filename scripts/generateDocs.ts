// Generates the docs that are derived from the code, so they cannot drift from it:
// - docs/protocol.schema.json: the JSON Schema of the client API's wire format, from the zod
//   schemas the server and the client library use (src/api/schema.ts, src/api/wire.ts), so a
//   client in another language can be written from it;
// - docs/settings.md: every setting of `understudy node`, from src/config/config.ts;
// - docs/benchmarks.md: the benchmarks' recorded runs, from bench/results/*.json
//   (scripts/benchmarksDoc.ts).
// test/unit/generatedDocs.unit.test.ts fails when a checked-in file is not what this writes.
//
// - README.md: the node lifecycle diagram between its machine-diagram markers, from the machine.
//   npm run docs        (rewrites all four)
import { readFileSync, writeFileSync } from 'node:fs';
import { masterNodeMachine } from '../machines/masterNode.machine.ts';
import { toMermaid } from '../src/tools/diagram.ts';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { API_OPS, MAX_BATCH_ITEMS, requestSchemas, responseSchemas } from '../src/api/schema.ts';
import { API_QUEUE_GROUP, apiSubject, listeningSubject } from '../src/api/subjects.ts';
import { MAX_REQUEST_BYTES, RETRYABLE_CODES, wireErrorSchema } from '../src/api/wire.ts';
import { nodeSettings } from '../src/config/config.ts';
import { defaultText, envName, flagName } from '../src/config/settings.ts';
import { BENCHMARKS_PATH, benchmarksText } from './benchmarksDoc.ts';

/** Where the generated schema is checked in. */
export const PROTOCOL_SCHEMA_PATH = fileURLToPath(
  new URL('../docs/protocol.schema.json', import.meta.url),
);

/** Where the generated settings reference is checked in. */
export const SETTINGS_PATH = fileURLToPath(new URL('../docs/settings.md', import.meta.url));

/** `schema` as JSON Schema (what a sender may send: unknown fields allowed where zod allows them). */
function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' });
  return rest;
}

/** A subject pattern: `understudy.{cluster}.api.{op}`. */
function pattern(subject: string): string {
  return subject.replace('CLUSTER', '{cluster}').replace('OP', '{op}');
}

/** The whole document, as it is written to {@link PROTOCOL_SCHEMA_PATH}. */
export function protocolSchemaText(): string {
  const defs: Record<string, unknown> = { WireError: jsonSchemaOf(wireErrorSchema) };
  const ops: Record<string, unknown> = {};
  for (const op of API_OPS) {
    defs[`${op}Request`] = jsonSchemaOf(requestSchemas[op]);
    defs[`${op}Result`] = jsonSchemaOf(responseSchemas[op]);
    defs[`${op}Reply`] = {
      oneOf: [
        {
          type: 'object',
          properties: { ok: { const: true }, result: { $ref: `#/$defs/${op}Result` } },
          required: ['ok', 'result'],
        },
        {
          type: 'object',
          properties: { ok: { const: false }, error: { $ref: '#/$defs/WireError' } },
          required: ['ok', 'error'],
        },
      ],
    };
    ops[op] = {
      subject: pattern(apiSubject('CLUSTER', op)),
      request: { $ref: `#/$defs/${op}Request` },
      reply: { $ref: `#/$defs/${op}Reply` },
    };
  }
  const document = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'understudy client API',
    description: [
      'Each operation is a NATS request/reply: the request body is the UTF-8 JSON of the',
      "operation's request object, sent to its subject; the reply is {ok: true, result} or",
      '{ok: false, error}. Only the serving primary subscribes (queue group',
      `${API_QUEUE_GROUP}); NATS "no responders" means none serves now. Bodies over`,
      `${MAX_REQUEST_BYTES} bytes are refused with REQUEST_TOO_LARGE; batches hold at most`,
      `${MAX_BATCH_ITEMS} items. Errors whose code is one of`,
      `${[...RETRYABLE_CODES].join(', ')} are retryable: send the request again (with backoff).`,
      'See docs/protocol.md.',
    ].join(' '),
    'x-understudy': {
      announcement: {
        subject: pattern(listeningSubject('CLUSTER')),
        description:
          'A new primary publishes here once it serves: a waiting client may retry at once.',
      },
      queueGroup: API_QUEUE_GROUP,
      maxRequestBytes: MAX_REQUEST_BYTES,
      maxBatchItems: MAX_BATCH_ITEMS,
      retryableCodes: [...RETRYABLE_CODES],
      operations: ops,
    },
    $defs: defs,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** docs/settings.md: one row per setting of `understudy node`. */
export function settingsReferenceText(): string {
  const cell = (text: string): string => text.replace(/\|/g, '\\|');
  const rows = Object.entries(nodeSettings).map(([key, setting]) => {
    const flag = setting.secret
      ? '(none: a secret)'
      : `\`${flagName(key)} ${setting.type.placeholder}\``;
    const shownDefault = defaultText(setting);
    const value =
      setting.presence === 'required'
        ? 'required'
        : shownDefault === undefined
          ? ''
          : `\`${shownDefault}\``;
    return `| \`${key}\` | ${cell(flag)} | \`${envName(key)}\` | ${cell(value)} | ${cell(setting.help)} |`;
  });
  return [
    '# Settings of `understudy node`',
    '',
    '<!-- Generated from src/config/config.ts by `npm run docs`; a test checks it is current. -->',
    '',
    'Each setting is a flag, an environment variable and a key of the JSON config file',
    '(`--config FILE` or `UNDERSTUDY_CONFIG`); flags win over the environment, which wins over',
    'the file. A config file may hold any of these keys (`status`, `switchover`, `export` and',
    '`replay` read the same file and use the keys they need); an unknown key is refused.',
    'Durations take a unit (`500ms`, `5s`, `2m`, `24h`); lists are comma-separated (a JSON array',
    'in the file). Secrets have no flag: flags are visible in `ps`.',
    '',
    '| key | flag | environment variable | default | what it is |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

export const README_PATH = fileURLToPath(new URL('../README.md', import.meta.url));
const DIAGRAM_START = /<!-- machine-diagram:start[^>]*-->\n/;
const DIAGRAM_END = '<!-- machine-diagram:end -->';

/**
 * `readme` with the node machine's Mermaid diagram (as `understudy machines --format mermaid`
 * draws it) between its markers. Throws when the markers are missing.
 */
export function readmeWithMachineDiagram(readme: string): string {
  const start = DIAGRAM_START.exec(readme);
  const end = readme.indexOf(DIAGRAM_END);
  if (start === null || end < start.index) throw new Error('README: no machine-diagram markers');
  const from = start.index + start[0].length;
  const diagram = `\`\`\`mermaid\n${toMermaid(masterNodeMachine).trimEnd()}\n\`\`\`\n`;
  return readme.slice(0, from) + diagram + readme.slice(end);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README_PATH, readmeWithMachineDiagram(readFileSync(README_PATH, 'utf8')));
  writeFileSync(PROTOCOL_SCHEMA_PATH, protocolSchemaText());
  writeFileSync(SETTINGS_PATH, settingsReferenceText());
  writeFileSync(BENCHMARKS_PATH, benchmarksText());
  process.stderr.write(
    `docs: wrote ${PROTOCOL_SCHEMA_PATH}, ${SETTINGS_PATH} and ${BENCHMARKS_PATH}\n`,
  );
}
