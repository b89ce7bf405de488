import { sql, type Kysely } from 'kysely';

/**
 * Why: people must hear of what waits for them (issue 12) without keeping the portal open, and a
 * notification must neither be lost in a crash nor sent from inside a transaction. So a change
 * writes its notifications as delivery rows in its own transaction (the outbox), and a job per
 * delivery sends it afterwards, retried with backoff; the row's id is the message's stable id
 * (Message-ID), so a crash between sending and recording repeats the same message, never a new
 * one. `dedupe_key` makes events that recur (a revoke failing on every retry) notify once.
 * Users get an email address (from the OIDC email claim, or set by an admin) and per-person
 * preferences: email on/off and quiet hours that hold back mail that is not urgent.
 * New job kinds: `notify` (send one delivery), `notify_ending` (a grant ends soon),
 * `notify_reminder` and `notify_escalation` (a pending request still waits).
 */
const JOB_KINDS = [
  'provision',
  'expire',
  'revoke',
  'request_timeout',
  'reconcile',
  'extend',
  'notify',
  'notify_ending',
  'notify_reminder',
  'notify_escalation',
];
const OLD_JOB_KINDS = JOB_KINDS.slice(0, 6);

const statements = [
  sql`ALTER TABLE users ADD COLUMN email text CHECK (email IS NULL OR length(email) <= 320)`,
  sql`CREATE TABLE notification_deliveries (
    id text PRIMARY KEY,
    dedupe_key text NOT NULL UNIQUE CHECK (length(dedupe_key) <= 2048),
    event text NOT NULL CHECK (length(event) <= 64),
    subject_id text CHECK (length(subject_id) <= 256),
    channel text NOT NULL CHECK (length(channel) <= 63),
    channel_type text NOT NULL CHECK (length(channel_type) <= 32),
    recipient text NOT NULL CHECK (length(recipient) <= 400),
    urgent boolean NOT NULL DEFAULT false,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text CHECK (length(last_error) <= 2000),
    created_at timestamptz NOT NULL,
    sent_at timestamptz,
    finished_at timestamptz,
    CHECK (status <> 'sent' OR sent_at IS NOT NULL)
  )`,
  sql`CREATE INDEX notification_deliveries_created_idx ON notification_deliveries (created_at DESC, id DESC)`,
  sql`CREATE INDEX notification_deliveries_status_idx ON notification_deliveries (status, created_at DESC)`,
  sql`CREATE TABLE notification_preferences (
    principal_id text PRIMARY KEY CHECK (length(principal_id) <= 256),
    email_enabled boolean NOT NULL DEFAULT true,
    quiet_start smallint CHECK (quiet_start BETWEEN 0 AND 1439),
    quiet_end smallint CHECK (quiet_end BETWEEN 0 AND 1439),
    timezone text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) <= 64),
    updated_at timestamptz NOT NULL,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
  )`,
];

function kindCheck(kinds: readonly string[]) {
  return sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (${sql.join(kinds.map((k) => sql.lit(k)))}))`;
}

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await kindCheck(JOB_KINDS).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind IN ('notify', 'notify_ending', 'notify_reminder', 'notify_escalation')`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await kindCheck(OLD_JOB_KINDS).execute(db);
  await sql`DROP TABLE IF EXISTS notification_preferences`.execute(db);
  await sql`DROP TABLE IF EXISTS notification_deliveries`.execute(db);
  await sql`ALTER TABLE users DROP COLUMN IF EXISTS email`.execute(db);
}
