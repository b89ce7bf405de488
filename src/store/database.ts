import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { LapseError } from '../domain/errors.js';
import { serveAdminSocket, type AdminSocketOptions } from './admin-socket.js';
import { lockDataDir } from './data-dir-lock.js';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';

export interface StoreOptions {
  /** A PostgreSQL connection string; when set, the embedded database is not used. */
  readonly databaseUrl?: string | undefined;
  /** Where the embedded database lives (default ./.lapse/data). */
  readonly dataDir?: string | undefined;
  /** Start the embedded database from a dump (tests: a migrated template, ~0.3 s instead of ~1.5 s). */
  readonly loadDataDir?: Blob | File | undefined;
  /** Apply pending migrations on open (default true). */
  readonly migrate?: boolean;
}

export interface Store {
  readonly db: Kysely<Database>;
  readonly kind: 'pglite' | 'postgres';
  /** A dedicated session for things bound to one connection (advisory locks, LISTEN); null on PGlite. */
  connect(): Promise<pg.Client | null>;
  /** PGlite only: the embedded instance (for dumps in tests). */
  readonly pglite: PGlite | null;
  /**
   * PGlite only: lends this process's session to admin commands over `<dataDir>/admin/lapse.sock`
   * (admin-socket.ts) while it holds the data directory; returns how to stop.
   */
  serveAdminSocket?(dataDir: string, options?: AdminSocketOptions): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * NB. Server sessions get hard limits so a stuck or dead worker cannot hold locks for long:
 * statements end after 30 s, an idle open transaction after 60 s, and TCP keepalives find dead peers.
 */
const SERVER_SESSION_OPTIONS = '-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000 -c lock_timeout=10000';

function serverConfig(databaseUrl: string): pg.PoolConfig {
  return {
    connectionString: databaseUrl,
    options: SERVER_SESSION_OPTIONS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: 10_000,
    application_name: 'lapse',
    max: 10,
  };
}

export async function openStore(options: StoreOptions = {}): Promise<Store> {
  const store = options.databaseUrl ? await openServer(options.databaseUrl) : await openEmbedded(options);
  if (options.migrate !== false) {
    try {
      await migrateToLatest(store.db);
    } catch (error) {
      await store.close();
      throw error;
    }
  }
  return store;
}

async function openServer(databaseUrl: string): Promise<Store> {
  const config = serverConfig(databaseUrl);
  const pool = new pg.Pool(config);
  // An idle client that errors (server restart) must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end();
    throw new LapseError('storage_unavailable', `cannot connect to PostgreSQL: ${(error as Error).message}`, {
      where: redactUrl(databaseUrl),
      hint: 'Check DATABASE_URL (host, port, database, credentials) and that the server is running.',
    });
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'postgres',
    pglite: null,
    connect: async () => {
      const client = new pg.Client(config);
      client.on('error', () => {});
      await client.connect();
      return client;
    },
    close: () => db.destroy(),
  };
}

async function openEmbedded(options: StoreOptions): Promise<Store> {
  const dataDir = options.dataDir ?? join(process.cwd(), '.lapse', 'data');
  const inMemory = dataDir.startsWith('memory://');
  const unlock = inMemory ? () => {} : await lockDataDir(dataDir);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(inMemory ? dataDir : join(dataDir, 'pgdata'), {
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
    });
  } catch (error) {
    unlock();
    throw new LapseError('storage_unavailable', `cannot open the embedded database: ${(error as Error).message}`, {
      where: dataDir,
      hint: 'The data directory may be damaged or written by another PGlite version; restore it from a backup or choose another --data-dir.',
    });
  }
  // NB. PGlite's own node-postgres adapter (pool of one session) rather than kysely-pglite: the
  // latter interleaves overlapping transactions on PGlite's single session and lost committed rows.
  const pool = new pg.Pool({ ...createPgConfig(pglite), max: 1 } as pg.PoolConfig);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: 'pglite',
    pglite,
    connect: async () => null,
    serveAdminSocket: (socketDataDir, socketOptions) => serveAdminSocket(pool, socketDataDir, socketOptions),
    close: async () => {
      await db.destroy();
      await pglite.close();
      unlock();
    },
  };
}

export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  // Two replicas starting together against one server must not both migrate: Kysely's Postgres
  // adapter serialises migrators with a session advisory lock.
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new LapseError('storage_unavailable', `database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`, {
      hint: 'Nothing of that migration was applied. Fix the cause (permissions, disk) and run `lapse migrate` again.',
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function pendingMigrations(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const all = await migrator.getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/** The database's clock: every timer compares against it, so replicas never disagree on "now". */
export async function databaseNow(db: Kysely<Database>): Promise<Date> {
  const { rows } = await sql<{ now: Date }>`SELECT clock_timestamp() AS now`.execute(db);
  return new Date(rows[0]!.now);
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}
