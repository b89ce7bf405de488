import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openStore } from '../src/store/index.js';
import { POSTGRES_ADMIN_URL, offline } from './support/environment.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
  }
}

/**
 * Runs once before all test files: checks the real services the suite needs (so a missing one is
 * one clear failure, not hundreds of timeouts) and builds a migrated PGlite template that tests
 * clone in ~0.3 s instead of running initdb + migrations (~1.5 s) each time.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  if (!offline()) {
    const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (error) {
      throw new Error(
        `The test suite needs PostgreSQL at ${POSTGRES_ADMIN_URL} (${(error as Error).message}). ` +
          'Start it, point LAPSE_TEST_POSTGRES_URL at one, or run `npm run test:offline` for the part of the suite that needs no services.',
      );
    } finally {
      await client.end().catch(() => {});
    }
  }

  const dir = mkdtempSync(join(tmpdir(), 'lapse-template-'));
  const store = await openStore({ dataDir: 'memory://' });
  const dump = await store.pglite!.dumpDataDir('gzip');
  await store.close();
  const path = join(dir, 'template.tar.gz');
  writeFileSync(path, Buffer.from(await dump.arrayBuffer()));
  project.provide('pgliteTemplate', path);
  return () => rmSync(dir, { recursive: true, force: true });
}
