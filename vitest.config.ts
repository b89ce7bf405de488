import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The live smoke suite against real clouds is opt-in: npm run test:live (vitest.live.config.ts).
    exclude: ['**/node_modules/**', 'test/live/**'],
    // Storage and engine tests start PGlite (about 0.3 s per cloned database, ~300 MB each) and
    // talk to the real PostgreSQL server; two workers keep a 2-core machine busy without thrashing.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/global-setup.ts'],
  },
});
