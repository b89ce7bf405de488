import { defineConfig } from 'vitest/config';

/**
 * The opt-in live smoke suite against real clouds: `npm run test:live -- aws|gcp|azure|k8s`
 * (the argument picks test/live/<name>.live.test.ts). Each file is skipped, saying which
 * environment variables it needs, unless real credentials are given. Never part of `npm test`.
 */
export default defineConfig({
  test: {
    include: ['test/live/**/*.live.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
