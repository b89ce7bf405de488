import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { openStore, type Store } from '../../src/store/index.js';
import { POSTGRES_ADMIN_URL, offline } from './environment.js';

export type Backend = 'pglite' | 'postgres';

/** The backends a run covers: both, or PGlite alone under `npm run test:offline`. */
export function backends(): Backend[] {
  return offline() ? ['pglite'] : ['pglite', 'postgres'];
}

/** A fresh, migrated embedded database cloned from the template built in global setup. */
export async function openPgliteStore(): Promise<Store> {
  const template = readFileSync(inject('pgliteTemplate'));
  return openStore({ dataDir: 'memory://', loadDataDir: new Blob([template]) });
}

export interface ServerDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** A new database `lapse_test_<random>` on the real server, so runs never see each other's rows. */
export async function createServerDatabase(): Promise<ServerDatabase> {
  const name = `lapse_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface OpenedStore {
  readonly store: Store;
  /** For PostgreSQL: the database URL, so a test can open a second store (another "replica"). */
  readonly url: string | null;
  close(): Promise<void>;
}

export async function openTestStore(backend: Backend): Promise<OpenedStore> {
  if (backend === 'pglite') {
    const store = await openPgliteStore();
    return { store, url: null, close: () => store.close() };
  }
  const database = await createServerDatabase();
  const store = await openStore({ databaseUrl: database.url });
  return {
    store,
    url: database.url,
    close: async () => {
      await store.close();
      await database.drop();
    },
  };
}

/**
 * Runs one suite against every backend (PGlite and the real PostgreSQL server): one schema, one
 * set of migrations, the same behaviour. Each backend gets its own fresh database for the suite.
 */
export function describeEachStore(name: string, suite: (context: { store: () => Store; url: () => string | null; backend: Backend }) => void): void {
  for (const backend of backends()) {
    describe(`${name} [${backend}]`, () => {
      let opened: OpenedStore | undefined;
      beforeAll(async () => {
        opened = await openTestStore(backend);
      });
      afterAll(async () => {
        await opened?.close();
      });
      suite({
        store: () => {
          if (!opened) throw new Error('store not open yet: use it inside tests or hooks');
          return opened.store;
        },
        url: () => opened?.url ?? null,
        backend,
      });
    });
  }
}
