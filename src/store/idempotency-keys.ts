import { sql, type Transaction } from 'kysely';
import type { Database } from './schema.js';
import type { Executor } from './executor.js';

/** A response remembered under a caller's Idempotency-Key (src/api/idempotency.ts). */
export interface IdempotencyRecord {
  readonly principalId: string;
  readonly key: string;
  /** Hash of the request (method, route, parameters, body): the same key for another request is refused. */
  readonly fingerprint: string;
  readonly status: number;
  /** The response body, JSON. */
  readonly body: string;
}

/**
 * Forgets a caller's keys older than `ttlMs` (the primary key's prefix finds them), and rows
 * without a response (claims left by a version of Lapse before responses were stored with the change).
 */
export async function forgetIdempotencyKeys(db: Executor, principalId: string, ttlMs: number): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('principal_id', '=', principalId)
    .where((eb) => eb.or([eb('created_at', '<', sql<Date>`now() - ${`${ttlMs} milliseconds`}::interval`), eb('body', 'is', null)]))
    .execute();
}

/** The response stored under a caller's key, if one is. */
export async function findIdempotencyRecord(db: Executor, principalId: string, key: string): Promise<IdempotencyRecord | undefined> {
  const row = await db.selectFrom('idempotency_keys').selectAll().where('principal_id', '=', principalId).where('key', '=', key).executeTakeFirst();
  if (!row || row.status === null || row.body === null) return undefined;
  return { principalId: row.principal_id, key: row.key, fingerprint: row.fingerprint, status: row.status, body: row.body };
}

/** Remembers a response in the transaction of the change it answers for (a taken key fails with 23505). */
export async function recordIdempotencyKey(tx: Transaction<Database>, record: IdempotencyRecord): Promise<void> {
  await tx
    .insertInto('idempotency_keys')
    .values({
      principal_id: record.principalId,
      key: record.key,
      fingerprint: record.fingerprint,
      status: record.status,
      body: record.body,
      created_at: sql<Date>`now()`,
    })
    .execute();
}
