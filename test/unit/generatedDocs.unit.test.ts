// The docs generated from the code (scripts/generateDocs.ts, `npm run docs`): current, and
// docs/protocol.schema.json valid JSON Schema that agrees with the zod schemas on requests;
// docs/benchmarks.md what the recorded runs (bench/results/*.json) say.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { API_OPS, requestSchemas } from '../../src/api/schema.ts';
import {
  PROTOCOL_SCHEMA_PATH,
  protocolSchemaText,
  README_PATH,
  readmeWithMachineDiagram,
  SETTINGS_PATH,
  settingsReferenceText,
} from '../../scripts/generateDocs.ts';
import {
  BENCH_SPECS,
  BENCHMARKS_PATH,
  benchmarksText,
  missingFromResults,
  readResult,
} from '../../scripts/benchmarksDoc.ts';
import { nodeSettings } from '../../src/config/config.ts';
import { envName } from '../../src/config/settings.ts';

const checkedIn = readFileSync(PROTOCOL_SCHEMA_PATH, 'utf8');
const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
ajv.addKeyword('x-understudy');
const document = JSON.parse(checkedIn) as { $defs: Record<string, unknown> };
ajv.addSchema(document, 'protocol');
const valid = (def: string, value: unknown): boolean =>
  ajv.validate({ $ref: `protocol#/$defs/${def}` }, value);

describe('docs/settings.md', () => {
  it('is what `npm run docs` generates from src/config/config.ts', () => {
    expect(readFileSync(SETTINGS_PATH, 'utf8')).toBe(settingsReferenceText());
  });

  it('has a row for every setting', () => {
    const text = settingsReferenceText();
    for (const key of Object.keys(nodeSettings)) {
      expect(text).toContain(`| \`${key}\` |`);
      expect(text).toContain(`\`${envName(key)}\``);
    }
  });
});

describe('docs/protocol.schema.json', () => {
  it('is what `npm run docs` generates from src/api (run it after changing the schemas)', () => {
    expect(checkedIn).toBe(protocolSchemaText());
  });

  it('is valid JSON Schema 2020-12 with a request, result and reply per op', () => {
    expect(ajv.validateSchema(document)).toBe(true);
    for (const op of API_OPS) {
      for (const part of ['Request', 'Result', 'Reply']) {
        expect(document.$defs[`${op}${part}`], `${op}${part}`).toBeDefined();
      }
    }
  });

  it('takes the requests zod takes and refuses the ones it refuses', () => {
    const cases: Array<[op: (typeof API_OPS)[number], body: unknown]> = [
      ['mountSegment', { segmentId: 's', nodeId: 'n', size: 10 }],
      ['mountSegment', { segmentId: 's', nodeId: 'n', size: 10, extra: 1 }],
      ['mountSegment', { segmentId: 's', nodeId: 'n', size: '10' }],
      ['mountSegment', { segmentId: 's', nodeId: 'n' }],
      ['putStart', { key: 'k', size: 1, replicaNum: 2 }],
      ['putStart', { key: 7, size: 1, replicaNum: 2 }],
      ['get', { key: 'k' }],
      ['get', {}],
      ['putStartBatch', { items: [{ key: 'k', size: 1, replicaNum: 1 }] }],
      [
        'putStartBatch',
        { items: Array.from({ length: 1001 }, () => ({ key: 'k', size: 1, replicaNum: 1 })) },
      ],
      ['putEndBatch', { keys: ['a', 'b'] }],
      ['putEndBatch', { keys: 'a' }],
    ];
    for (const [op, body] of cases) {
      const zodSays = requestSchemas[op].safeParse(body).success;
      expect(valid(`${op}Request`, body), `${op} ${JSON.stringify(body).slice(0, 80)}`).toBe(
        zodSays,
      );
    }
  });

  it('describes the reply envelope: a result, or an error with a known code', () => {
    expect(valid('putEndReply', { ok: true, result: { seq: 3 } })).toBe(true);
    expect(valid('putEndReply', { ok: true, result: { seq: 3, later: 'a new field' } })).toBe(true);
    expect(
      valid('getReply', {
        ok: false,
        error: { code: 'OBJECT_NOT_FOUND', message: 'no object k', retryable: false, field: 'key' },
      }),
    ).toBe(true);
    expect(
      valid('getReply', { ok: false, error: { code: 'NOPE', message: '', retryable: false } }),
    ).toBe(false);
    expect(valid('getReply', { ok: true })).toBe(false);
  });
});

describe('docs/benchmarks.md', () => {
  it('is what `npm run docs` generates from bench/results (run it after a bench run)', () => {
    expect(readFileSync(BENCHMARKS_PATH, 'utf8')).toBe(benchmarksText());
  });

  it('lists only figures the recorded runs have', () => {
    expect(missingFromResults()).toEqual([]);
  });

  it('publishes only runs whose verdicts all passed, with their machine', () => {
    for (const { bench } of BENCH_SPECS) {
      const record = readResult(bench);
      if (record === undefined) continue;
      expect(record.bench).toBe(bench);
      expect(record.verdicts.filter((v) => !v.ok)).toEqual([]);
      expect(record.machine.cores).toBeGreaterThan(0);
      expect(record.machine.loadAverage.start).toHaveLength(3);
      expect(record.commit).toMatch(/^[0-9a-f]{12}(-dirty)?$/);
    }
  });
});

describe('the README machine diagram', () => {
  it('is what `npm run docs` generates from machines/masterNode.machine.ts', () => {
    const readme = readFileSync(README_PATH, 'utf8');
    expect(readme).toContain('<!-- machine-diagram:start');
    expect(readme).toBe(readmeWithMachineDiagram(readme));
  });
});
