import { sql, type Kysely } from 'kysely';

/**
 * Why: reconciliation compares what each target really has with what Lapse granted. What it finds
 * is stored (not only logged) so drift can be listed, followed over time and closed: a finding is
 * opened once, refreshed while it is still observed, and resolved or remediated when it goes; the
 * partial unique index keeps one open finding per access however many runs or replicas see it.
 * Each run per target is recorded, with its error, so a target whose listing fails is visible.
 * Runs are durable jobs (one per target) like every other timer, hence the new job kind.
 */
const statements = [
  sql`CREATE TABLE findings (
    id text PRIMARY KEY,
    target text NOT NULL,
    entitlement text NOT NULL CHECK (length(entitlement) <= 1024),
    account text NOT NULL CHECK (length(account) <= 1024),
    principal_id text NOT NULL CHECK (length(principal_id) <= 1024),
    kind text NOT NULL CHECK (kind IN ('standing', 'missing')),
    grant_id text,
    status text NOT NULL CHECK (status IN ('open', 'resolved', 'remediated')),
    first_seen_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    resolved_at timestamptz,
    remediated_at timestamptz,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK (kind <> 'missing' OR grant_id IS NOT NULL),
    CHECK (status <> 'resolved' OR resolved_at IS NOT NULL),
    CHECK (status <> 'remediated' OR remediated_at IS NOT NULL)
  )`,
  sql`CREATE UNIQUE INDEX findings_open_key_idx ON findings (target, entitlement, account, kind) WHERE status = 'open'`,
  sql`CREATE INDEX findings_status_idx ON findings (status, last_seen_at DESC)`,
  sql`CREATE INDEX findings_target_idx ON findings (target, last_seen_at DESC)`,
  sql`CREATE TABLE reconcile_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target text NOT NULL,
    trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    listed integer NOT NULL DEFAULT 0,
    standing integer NOT NULL DEFAULT 0,
    missing integer NOT NULL DEFAULT 0,
    opened integer NOT NULL DEFAULT 0,
    resolved integer NOT NULL DEFAULT 0,
    remediated integer NOT NULL DEFAULT 0,
    error text
  )`,
  sql`CREATE INDEX reconcile_runs_target_idx ON reconcile_runs (target, started_at DESC)`,
  // Grants that ended during a listing still account for what it saw; found by end time.
  sql`CREATE INDEX grants_ended_at_idx ON grants (target, ended_at) WHERE ended_at IS NOT NULL`,
  sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`,
  sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('provision', 'expire', 'revoke', 'request_timeout', 'reconcile'))`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind = 'reconcile'`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('provision', 'expire', 'revoke', 'request_timeout'))`.execute(db);
  await sql`DROP INDEX IF EXISTS grants_ended_at_idx`.execute(db);
  await sql`DROP TABLE IF EXISTS reconcile_runs`.execute(db);
  await sql`DROP TABLE IF EXISTS findings`.execute(db);
}
