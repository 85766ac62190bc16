import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'images/**/*.test.ts', 'bin/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Full-machine tests are CPU bound; two cores here.
    pool: 'forks',
    maxWorkers: 2,
  },
});
