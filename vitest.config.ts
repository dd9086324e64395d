import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/buildDist.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration and end-to-end tests start real servers: keep the 2-core machine calm.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
