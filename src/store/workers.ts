import { randomInt } from 'node:crypto';
import { sql } from 'kysely';
import type { Store } from './database.js';
import { WORKER_LOCK_NAMESPACE } from './jobs.js';

export interface WorkerLease {
  /** This worker's key: jobs it claims carry it in `locked_by`. */
  readonly key: number;
  release(): Promise<void>;
}

/**
 * A worker proves it is alive by holding a session advisory lock (namespace, key) for its whole
 * life. When the process dies, its connection closes and PostgreSQL drops the lock, so other
 * workers take over its claimed jobs at once instead of waiting out a lease.
 * NB. On PGlite the lock lives in the one embedded session, which ends with the process too.
 */
export async function registerWorker(store: Store): Promise<WorkerLease> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const key = randomInt(1, 2 ** 31 - 1);
    const client = await store.connect();
    if (client) {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [WORKER_LOCK_NAMESPACE, key]);
      if (rows[0]?.ok) {
        return {
          key,
          release: async () => {
            await client.end().catch(() => {});
          },
        };
      }
      await client.end();
    } else {
      const { rows } = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${WORKER_LOCK_NAMESPACE}, ${key}) AS ok`.execute(store.db);
      if (rows[0]?.ok) {
        return {
          key,
          release: async () => {
            await sql`SELECT pg_advisory_unlock(${WORKER_LOCK_NAMESPACE}, ${key})`.execute(store.db).catch(() => {});
          },
        };
      }
    }
  }
  throw new Error('could not find a free worker key after 20 tries');
}
