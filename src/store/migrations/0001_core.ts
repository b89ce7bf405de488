import { sql, type Kysely } from 'kysely';

/**
 * Why: the first schema. Requests, reviews and grants hold lifecycle state in an explicit status
 * column guarded by CHECK constraints; every timer is a row in `jobs` so nothing lives only in
 * memory; connector attempts are recorded before the call so a crash in between is retried safely;
 * the audit log is an append-only hash chain whose head row serialises appends.
 */
const statements = [
  sql`CREATE TABLE requests (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('access', 'extension', 'break_glass')),
    principal_id text NOT NULL,
    principal jsonb NOT NULL,
    target text NOT NULL,
    entitlement text NOT NULL,
    duration_ms bigint NOT NULL CHECK (duration_ms > 0),
    reason text NOT NULL,
    ticket text,
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'cancelled', 'timed_out')),
    policy text,
    policy_version text NOT NULL,
    reasons jsonb NOT NULL,
    stages jsonb NOT NULL,
    current_stage integer NOT NULL DEFAULT 0,
    grant_id text,
    client jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL,
    decided_at timestamptz,
    pending_until timestamptz,
    reviewed_at timestamptz,
    reviewed_by text
  )`,
  sql`CREATE INDEX requests_principal_idx ON requests (principal_id, created_at DESC)`,
  sql`CREATE INDEX requests_pending_idx ON requests (created_at) WHERE status = 'pending'`,
  sql`CREATE TABLE reviews (
    id text PRIMARY KEY,
    request_id text NOT NULL REFERENCES requests (id),
    reviewer_id text NOT NULL,
    reviewer jsonb NOT NULL,
    decision text NOT NULL CHECK (decision IN ('approve', 'deny')),
    comment text NOT NULL,
    stage integer NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (request_id, reviewer_id)
  )`,
  sql`CREATE TABLE grants (
    id text PRIMARY KEY,
    request_id text NOT NULL REFERENCES requests (id),
    principal_id text NOT NULL,
    target text NOT NULL,
    entitlement text NOT NULL,
    access_key text NOT NULL,
    status text NOT NULL CHECK (status IN ('provisioning', 'active', 'revoking', 'revoked', 'failed')),
    duration_ms bigint NOT NULL CHECK (duration_ms > 0),
    break_glass boolean NOT NULL DEFAULT false,
    activated_at timestamptz,
    expires_at timestamptz,
    end_reason text,
    ended_by text,
    ended_at timestamptz,
    extensions integer NOT NULL DEFAULT 0,
    handle jsonb,
    provision_attempts integer NOT NULL DEFAULT 0,
    revoke_attempts integer NOT NULL DEFAULT 0,
    last_error text,
    covered_by text,
    created_at timestamptz NOT NULL,
    CHECK (status <> 'active' OR (activated_at IS NOT NULL AND expires_at IS NOT NULL))
  )`,
  sql`CREATE INDEX grants_live_access_idx ON grants (access_key) WHERE status IN ('provisioning', 'active', 'revoking')`,
  sql`CREATE INDEX grants_principal_idx ON grants (principal_id, status)`,
  sql`CREATE INDEX grants_status_idx ON grants (status, expires_at)`,
  sql`CREATE TABLE jobs (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('provision', 'expire', 'revoke', 'request_timeout')),
    subject_id text NOT NULL,
    due_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    locked_by integer,
    locked_until timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (kind, subject_id)
  )`,
  sql`CREATE INDEX jobs_due_idx ON jobs (due_at)`,
  sql`CREATE TABLE connector_attempts (
    id text PRIMARY KEY,
    grant_id text NOT NULL REFERENCES grants (id),
    operation text NOT NULL CHECK (operation IN ('provision', 'revoke')),
    worker integer NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text CHECK (outcome IN ('ok', 'error')),
    error text
  )`,
  sql`CREATE INDEX connector_attempts_grant_idx ON connector_attempts (grant_id, started_at)`,
  sql`CREATE TABLE config_versions (
    version text PRIMARY KEY,
    source text NOT NULL,
    first_loaded_at timestamptz NOT NULL
  )`,
  sql`CREATE TABLE audit_events (
    seq bigint PRIMARY KEY,
    id text NOT NULL UNIQUE,
    payload text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
  )`,
  sql`CREATE TABLE audit_head (
    id integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    hash text NOT NULL
  )`,
  sql`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64))`,
  sql`CREATE TABLE audit_checkpoints (
    seq bigint PRIMARY KEY,
    hash text NOT NULL,
    created_at timestamptz NOT NULL,
    key_id text NOT NULL,
    signature text NOT NULL
  )`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['audit_checkpoints', 'audit_head', 'audit_events', 'config_versions', 'connector_attempts', 'jobs', 'grants', 'reviews', 'requests']) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db);
  }
}
