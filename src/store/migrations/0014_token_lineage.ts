import { sql, type Kysely } from 'kysely';

/**
 * Why: a token may mint tokens (never longer-lived or wider than itself), but revoking a stolen
 * token left the tokens it had minted valid until they expired. `minted_by` records the token a
 * token was created with (NULL when made from a session or offline), so a revoke takes the whole
 * line below it. Existing tokens have no recorded parent; they keep working as before.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_tokens ADD COLUMN minted_by text`.execute(db);
  await sql`CREATE INDEX api_tokens_minted_by ON api_tokens (minted_by) WHERE minted_by IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS api_tokens_minted_by`.execute(db);
  await sql`ALTER TABLE api_tokens DROP COLUMN IF EXISTS minted_by`.execute(db);
}
