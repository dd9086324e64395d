// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/** I/O the pure core (src/domain, machines) must never import. */
const ioImports = {
  patterns: [
    { group: ['node:*'], message: 'The pure core does no I/O: use a port.' },
    { group: ['nats', '@nats-io/*'], message: 'The pure core does no I/O: use the OpLog port.' },
    { group: ['etcd3'], message: 'The pure core does no I/O: use the Elector port.' },
    { group: ['fs', 'net', 'child_process', 'os', 'http'], message: 'No I/O in the pure core.' },
  ],
};

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
