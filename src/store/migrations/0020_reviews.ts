import { sql, type Kysely } from 'kysely';

/**
 * Why: access reviews (docs/reviews.md). Auditors ask that access be re-certified on a schedule by
 * someone accountable (PCI DSS 7.2.4, SOX ITGC, ISO 27001 A.5.18). A campaign is one review round:
 * its scope and rules are copied in when it opens, so a config change mid-round does not move the
 * goal posts. Each item is one person's access to one entitlement (eligible by policy, used in the
 * period, or standing at the target) with its evidence and, once decided, the decision and what
 * came of it. Campaigns open and close on the database clock, hence two job kinds.
 */
/** The job kinds after 0019 (risk), which this migration follows. */
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
  'detect',
];

function kindCheck(kinds: readonly string[]) {
  return sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (${sql.join(kinds.map((k) => sql.lit(k)))}))`;
}

const statements = [
  sql`CREATE TABLE review_campaigns (
    id text PRIMARY KEY,
    name text NOT NULL CHECK (length(name) <= 63),
    origin text NOT NULL CHECK (origin IN ('config', 'api')),
    status text NOT NULL CHECK (status IN ('open', 'closed')),
    settings jsonb NOT NULL,
    period_from timestamptz NOT NULL,
    period_to timestamptz NOT NULL,
    opened_at timestamptz NOT NULL,
    opened_by text NOT NULL CHECK (length(opened_by) <= 256),
    deadline timestamptz NOT NULL,
    config_version text NOT NULL,
    closed_at timestamptz,
    closed_by text CHECK (length(closed_by) <= 256),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
  )`,
  sql`CREATE INDEX review_campaigns_name ON review_campaigns (name, opened_at)`,
  sql`CREATE TABLE review_items (
    id text PRIMARY KEY,
    campaign_id text NOT NULL REFERENCES review_campaigns (id),
    kind text NOT NULL CHECK (kind IN ('eligible', 'used', 'standing')),
    principal_id text NOT NULL CHECK (length(principal_id) <= 1024),
    target text NOT NULL CHECK (length(target) <= 63),
    entitlement text NOT NULL CHECK (length(entitlement) <= 1024),
    policy text CHECK (length(policy) <= 63),
    finding_id text,
    high_risk boolean NOT NULL,
    reviewers jsonb NOT NULL,
    evidence jsonb NOT NULL,
    decision text CHECK (decision IN ('keep', 'remove', 'unsure')),
    by_default boolean NOT NULL DEFAULT false,
    justification text CHECK (length(justification) <= 2000),
    decided_by text CHECK (length(decided_by) <= 256),
    decided_at timestamptz,
    outcome text NOT NULL CHECK (outcome IN ('pending', 'kept', 'flagged', 'removed', 'remove_failed', 'change_proposed', 'change_applied')),
    outcome_detail jsonb NOT NULL DEFAULT '{}',
    CHECK ((decision IS NULL) = (decided_at IS NULL))
  )`,
  sql`CREATE UNIQUE INDEX review_items_one ON review_items (campaign_id, kind, principal_id, target, entitlement, coalesce(finding_id, ''))`,
  sql`CREATE INDEX review_items_campaign ON review_items (campaign_id, decision)`,
  sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`,
  kindCheck([...KINDS_BEFORE, 'review_open', 'review_due']),
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind IN ('review_open', 'review_due')`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await kindCheck(KINDS_BEFORE).execute(db);
  await sql`DROP TABLE review_items`.execute(db);
  await sql`DROP TABLE review_campaigns`.execute(db);
}
