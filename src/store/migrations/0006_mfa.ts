import { sql, type Kysely } from 'kysely';

/**
 * Why: second factors for step-up (policies may demand MFA within N minutes of a request or an
 * approval).
 * - `mfa_totp`: one authenticator-app secret per user, sealed with the server's encryption key
 *   (AES-256-GCM bound to the user id), pending until a first code confirms it. `last_step` is the
 *   last accepted 30-second time-step: a code at or before it is a replay and is refused, and the
 *   conditional UPDATE on it makes two concurrent uses of one code impossible.
 * - `webauthn_credentials`: passkeys (public keys only; the private key never leaves the
 *   authenticator), with the signature counter for clone detection.
 * - `mfa_challenges`: WebAuthn challenges issued by the server, single use (deleted when used) and
 *   short-lived.
 * - `mfa_failures`: failed verifications per user, counted over a sliding window for lockout.
 */
const statements = [
  sql`CREATE TABLE mfa_totp (
    id text PRIMARY KEY,
    user_id text NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'active')),
    last_step bigint,
    created_at timestamptz NOT NULL,
    confirmed_at timestamptz,
    last_used_at timestamptz
  )`,
  sql`CREATE TABLE webauthn_credentials (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id text NOT NULL UNIQUE,
    name text NOT NULL,
    public_key bytea NOT NULL,
    counter bigint NOT NULL,
    transports jsonb NOT NULL,
    device_type text NOT NULL,
    backed_up boolean NOT NULL,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz
  )`,
  sql`CREATE INDEX webauthn_credentials_user_idx ON webauthn_credentials (user_id)`,
  sql`CREATE TABLE mfa_challenges (
    challenge text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('registration', 'authentication')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
  )`,
  sql`CREATE INDEX mfa_challenges_expiry_idx ON mfa_challenges (expires_at)`,
  sql`CREATE TABLE mfa_failures (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    factor text NOT NULL,
    at timestamptz NOT NULL
  )`,
  sql`CREATE INDEX mfa_failures_user_idx ON mfa_failures (user_id, at)`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['mfa_failures', 'mfa_challenges', 'webauthn_credentials', 'mfa_totp']) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db);
  }
}
