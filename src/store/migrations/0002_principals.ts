import { sql, type Kysely } from 'kysely';

/**
 * Why: the server needs principals of its own: local users (for small installs and bootstrap) and
 * API tokens for the CLI and automation. Tokens are stored as SHA-256 of a 256-bit random secret:
 * the secret is shown once and cannot be recovered; a fast hash is right for high-entropy secrets
 * and lets a presented token be found by its hash.
 */
const statements = [
  sql`CREATE TABLE users (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    kind text NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'service')),
    groups jsonb NOT NULL DEFAULT '[]'::jsonb,
    password_hash text,
    created_at timestamptz NOT NULL,
    disabled_at timestamptz
  )`,
  sql`CREATE TABLE api_tokens (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id),
    name text NOT NULL,
    secret_hash text NOT NULL UNIQUE,
    scopes jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
  )`,
  sql`CREATE INDEX api_tokens_user_idx ON api_tokens (user_id)`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS api_tokens`.execute(db);
  await sql`DROP TABLE IF EXISTS users`.execute(db);
}
