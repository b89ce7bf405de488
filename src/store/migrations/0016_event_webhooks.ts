import { sql, type Kysely } from 'kysely';

/**
 * Why: systems (SIEMs, ticketing, chat bots) want every lifecycle event as JSON, signed so a stock
 * Standard Webhooks verifier accepts it (issue 12). Subscriptions are admin-managed rows, not
 * lapse.yaml, because each holds a signing secret Lapse generates, shows once and keeps sealed.
 * Each event becomes one delivery per subscription in the transaction of the change (the outbox),
 * sent by a `webhook` job outside any transaction; the delivery id is the `webhook-id` header, the
 * same on every attempt and on a replay, so receivers drop repeats. The body is stored as sent so
 * that a replay repeats the same bytes.
 */
/** The job kinds after 0013 (vault), which this migration follows. */
const KINDS_BEFORE = [
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
  'rotate',
];

function kindCheck(kinds: readonly string[]) {
  return sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (${sql.join(kinds.map((k) => sql.lit(k)))}))`;
}

const statements = [
  sql`CREATE TABLE webhook_subscriptions (
    id text PRIMARY KEY,
    url text NOT NULL CHECK (length(url) <= 2048),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    events jsonb NOT NULL DEFAULT '[]'::jsonb,
    allow_insecure_http boolean NOT NULL DEFAULT false,
    secret_sealed text NOT NULL CHECK (length(secret_sealed) <= 4000),
    created_by text NOT NULL CHECK (length(created_by) <= 256),
    created_at timestamptz NOT NULL
  )`,
  sql`CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    dedupe_key text NOT NULL CHECK (length(dedupe_key) <= 2048),
    event text NOT NULL CHECK (length(event) <= 64),
    subject_id text CHECK (length(subject_id) <= 256),
    body text NOT NULL CHECK (length(body) <= 65536),
    status text NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    replays integer NOT NULL DEFAULT 0,
    last_status integer,
    last_error text CHECK (length(last_error) <= 2000),
    created_at timestamptz NOT NULL,
    sent_at timestamptz,
    finished_at timestamptz,
    UNIQUE (subscription_id, dedupe_key),
    CHECK (status <> 'sent' OR sent_at IS NOT NULL)
  )`,
  sql`CREATE INDEX webhook_deliveries_subscription_idx ON webhook_deliveries (subscription_id, id DESC)`,
  sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`,
  kindCheck([...KINDS_BEFORE, 'webhook']),
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind = 'webhook'`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await kindCheck(KINDS_BEFORE).execute(db);
  await sql`DROP TABLE IF EXISTS webhook_deliveries`.execute(db);
  await sql`DROP TABLE IF EXISTS webhook_subscriptions`.execute(db);
}
