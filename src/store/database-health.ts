import { sql } from 'kysely';
import { pendingMigrations } from './database.js';
import type { Executor } from './executor.js';

/** Readiness of the database: reachable, and every migration applied (for /readyz). */
export async function databaseHealth(db: Executor): Promise<{ database: 'ok' | 'unreachable'; migrations: 'ok' | 'pending' | 'unknown' }> {
  const database = await sql`SELECT 1`.execute(db).then(
    () => 'ok' as const,
    () => 'unreachable' as const,
  );
  if (database !== 'ok') return { database, migrations: 'unknown' };
  const migrations = await pendingMigrations(db).then(
    (pending) => (pending.length === 0 ? ('ok' as const) : ('pending' as const)),
    () => 'unknown' as const,
  );
  return { database, migrations };
}
