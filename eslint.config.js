// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { rooms } from './scripts/houseRooms.js';

/** I/O the pure core (src/domain, machines) must never import. */
const ioImports = {
  patterns: [
    { group: ['node:*'], message: 'The pure core does no I/O: use a port.' },
    { group: ['nats', '@nats-io/*'], message: 'The pure core does no I/O: use the OpLog port.' },
    { group: ['etcd3'], message: 'The pure core does no I/O: use the Elector port.' },
    { group: ['fs', 'net', 'child_process', 'os', 'http'], message: 'No I/O in the pure core.' },
  ],
};

/** Import direction, held by import-x/no-restricted-paths. */
const importDirection = Object.entries(rooms).map(([target, from]) => ({
  target: `./${target}`,
  from: from.map((room) => `./${room}`),
  message: `${target} must not import this room: imports point down the house (docs/design.md).`,
}));
// The client reaches an adapter only through its transport wiring (client/nats.ts).
importDirection.push({
  target: './src/client/!(nats).ts',
  from: ['./src/adapters'],
  message: 'The client is transport-neutral: only src/client/nats.ts wires an adapter.',
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'coverage/**', '.bench-out/**', 'dist/**', '.puppeteerrc.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver()] },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-cycle': 'error',
    },
  },
  {
    files: ['src/**/*.ts', 'machines/**/*.ts'],
    rules: { 'import-x/no-restricted-paths': ['error', { zones: importDirection }] },
  },
  {
    files: ['src/domain/**/*.ts', 'machines/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', ioImports] },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', URL: 'readonly' },
    },
  },
);
