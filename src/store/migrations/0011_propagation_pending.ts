import { sql, type Kysely } from 'kysely';

/**
 * Why: on an eventually consistent target (a cloud's IAM) a revoke can be accepted while a read
 * straight after still shows the access. Such a grant stays `revoking` ("revoked, propagation
 * pending") until a later revoke call reads the removal back; this column holds the connector's
 * reason meanwhile, so the API, the CLI and the portal can say so. NULL otherwise.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE grants ADD COLUMN propagation_pending text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE grants DROP COLUMN IF EXISTS propagation_pending`.execute(db);
}
