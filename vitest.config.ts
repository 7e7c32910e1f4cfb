import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Backends share one PostgreSQL server and spawn child processes; two
    // cores do not profit from more parallel files than this.
    maxWorkers: 2,
    minWorkers: 1,
    globalSetup: ['test/setup/global-setup.ts'],
  },
});
