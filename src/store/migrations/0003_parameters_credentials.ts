import { sql, type Kysely } from 'kysely';

/**
 * Why: real connectors need values from the requester (an SSH public key to sign) and some hand
 * back a secret (an ephemeral account's password). Parameters are stored with the request and its
 * grant (they are not secrets). Credentials live in their own table, sealed with AES-256-GCM, only
 * until the principal fetches them once or the grant ends; the row is then deleted, so nothing
 * secret outlives its use.
 */
const statements = [
  sql`ALTER TABLE requests ADD COLUMN parameters jsonb NOT NULL DEFAULT '{}'::jsonb`,
  sql`ALTER TABLE grants ADD COLUMN parameters jsonb NOT NULL DEFAULT '{}'::jsonb`,
  sql`CREATE TABLE grant_credentials (
    grant_id text PRIMARY KEY REFERENCES grants (id),
    principal_id text NOT NULL,
    key_id text NOT NULL,
    sealed text NOT NULL CHECK (length(sealed) <= 200000),
    created_at timestamptz NOT NULL
  )`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS grant_credentials`.execute(db);
  await sql`ALTER TABLE grants DROP COLUMN IF EXISTS parameters`.execute(db);
  await sql`ALTER TABLE requests DROP COLUMN IF EXISTS parameters`.execute(db);
}
