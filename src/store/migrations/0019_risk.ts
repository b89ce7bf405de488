import { sql, type Kysely } from 'kysely';

/**
 * Why: risk is computed by the server from Lapse's own history (docs/monitoring.md#risk), within
 * the policy latency budget, so the history is kept as baselines updated as requests happen
 * (never scanned per request): a person's baseline (hour-of-week and duration histograms,
 * decaying request and break-glass counts), how often they asked for each entitlement, how many
 * people of each group have history and used each entitlement, and the client networks, user
 * agents, countries and ASNs each person was seen from. Alerts (docs/monitoring.md#alerts) are
 * raised by detectors reading the audit chain from a durable cursor (one row), with decaying
 * counters for bursts; the detector runs as a job, hence the new job kind.
 */
/** The job kinds after 0016 (event webhooks), which this migration follows. */
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
  'webhook',
];

function kindCheck(kinds: readonly string[]) {
  return sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (${sql.join(kinds.map((k) => sql.lit(k)))}))`;
}

const statements = [
  sql`CREATE TABLE risk_people (
    principal_id text PRIMARY KEY,
    baseline jsonb NOT NULL,
    updated_at timestamptz NOT NULL
  )`,
  sql`CREATE TABLE risk_person_targets (
    principal_id text NOT NULL,
    target text NOT NULL,
    entitlement text NOT NULL,
    requests integer NOT NULL,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (principal_id, target, entitlement)
  )`,
  sql`CREATE TABLE risk_group_members (
    group_name text NOT NULL,
    principal_id text NOT NULL,
    PRIMARY KEY (group_name, principal_id)
  )`,
  sql`CREATE TABLE risk_groups (
    group_name text PRIMARY KEY,
    users integer NOT NULL
  )`,
  sql`CREATE TABLE risk_group_targets (
    group_name text NOT NULL,
    target text NOT NULL,
    entitlement text NOT NULL,
    users integer NOT NULL,
    PRIMARY KEY (group_name, target, entitlement)
  )`,
  sql`CREATE TABLE risk_seen (
    principal_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('network', 'userAgent', 'country', 'asn')),
    value text NOT NULL CHECK (length(value) <= 512),
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (principal_id, kind, value)
  )`,
  sql`CREATE TABLE alerts (
    id text PRIMARY KEY,
    kind text NOT NULL CHECK (length(kind) <= 64),
    severity text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    principal_id text,
    subject text,
    summary text NOT NULL CHECK (length(summary) <= 1000),
    detail jsonb NOT NULL,
    dedupe_key text NOT NULL CHECK (length(dedupe_key) <= 600),
    occurrences integer NOT NULL DEFAULT 1,
    raised_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at timestamptz,
    resolved_by text,
    note text CHECK (length(note) <= 2000)
  )`,
  sql`CREATE UNIQUE INDEX alerts_unresolved_dedupe ON alerts (dedupe_key) WHERE status <> 'resolved'`,
  sql`CREATE INDEX alerts_by_status ON alerts (status, raised_at DESC)`,
  sql`CREATE TABLE alert_counters (
    key text PRIMARY KEY CHECK (length(key) <= 600),
    value double precision NOT NULL,
    at_ms bigint NOT NULL
  )`,
  sql`CREATE TABLE alert_cursor (
    id integer PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL
  )`,
  sql`INSERT INTO alert_cursor (id, seq) VALUES (1, 0)`,
  sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`,
  kindCheck([...KINDS_BEFORE, 'detect']),
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind = 'detect'`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await kindCheck(KINDS_BEFORE).execute(db);
  for (const table of [
    'alert_cursor',
    'alert_counters',
    'alerts',
    'risk_seen',
    'risk_group_targets',
    'risk_groups',
    'risk_group_members',
    'risk_person_targets',
    'risk_people',
  ]) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db);
  }
}
