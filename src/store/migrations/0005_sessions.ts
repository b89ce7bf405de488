import { sql, type Kysely } from 'kysely';

/**
 * Why: people sign in (local passwords, OIDC) and get browser sessions; the CLI trades a browser
 * sign-in for an API token; a fresh install needs a first admin without a default password.
 * - users learn where they come from (`source`) and, for OIDC, their stable identity at the IdP
 *   (`external_id` = issuer + sub), so a renamed IdP account stays the same Lapse user.
 * - sessions and one-time codes/tokens are stored as SHA-256 of 256-bit random secrets (like API
 *   tokens): a database leak does not hand out live sessions.
 * - login_failures is one row per failed sign-in: per-account (100/hour) and per-IP (per minute)
 *   limits count rows in a sliding window, and rows older than an hour are pruned.
 * - oidc_flows holds the state, nonce and PKCE verifier of sign-ins in flight, bound to the browser
 *   that started them by a cookie whose hash is the key.
 */
const statements = [
  sql`ALTER TABLE users ADD COLUMN source text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'oidc'))`,
  sql`ALTER TABLE users ADD COLUMN external_id text UNIQUE CHECK (length(external_id) <= 2048)`,
  sql`CREATE TABLE sessions (
    id text PRIMARY KEY,
    secret_hash text NOT NULL UNIQUE,
    user_id text NOT NULL REFERENCES users (id),
    method text NOT NULL CHECK (method IN ('password', 'oidc', 'setup')),
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    mfa_at timestamptz,
    ended_at timestamptz,
    ip text CHECK (length(ip) <= 64),
    user_agent text CHECK (length(user_agent) <= 512)
  )`,
  sql`CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE ended_at IS NULL`,
  sql`CREATE TABLE login_failures (
    account text NOT NULL CHECK (length(account) <= 256),
    ip text NOT NULL CHECK (length(ip) <= 64),
    at timestamptz NOT NULL
  )`,
  sql`CREATE INDEX login_failures_account_idx ON login_failures (account, at)`,
  sql`CREATE INDEX login_failures_ip_idx ON login_failures (ip, at)`,
  sql`CREATE TABLE oidc_flows (
    id_hash text PRIMARY KEY,
    state text NOT NULL,
    nonce text NOT NULL,
    code_verifier text NOT NULL,
    return_to text NOT NULL CHECK (length(return_to) <= 2048),
    cli jsonb,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
  )`,
  sql`CREATE TABLE cli_login_codes (
    code_hash text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id),
    code_challenge text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
  )`,
  sql`CREATE TABLE setup_tokens (
    secret_hash text PRIMARY KEY,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    used_by text
  )`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['setup_tokens', 'cli_login_codes', 'oidc_flows', 'login_failures', 'sessions']) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db);
  }
  await sql`ALTER TABLE users DROP COLUMN IF EXISTS external_id`.execute(db);
  await sql`ALTER TABLE users DROP COLUMN IF EXISTS source`.execute(db);
}
