import { sql, type Kysely } from 'kysely';

/**
 * Why: Slack notifications (issue 12) reach people by their Slack user id, which Lapse must learn
 * from the person (a one-time linking code they send to the app) or an admin, never by matching
 * email addresses. Messages about a request are updated in place as it moves, so the message
 * reference (conversation + ts) must outlive the process. Interactive approvals must refuse a
 * replayed signed payload on every replica, so seen signatures are kept (a few minutes' worth).
 * - `slack_identities`: one Slack user per Lapse user and the other way round.
 * - `slack_link_codes`: short-lived codes, stored as SHA-256 hashes (a leaked table links nobody).
 * - `slack_messages`: where each delivery's message went, keyed by the delivery (a retried
 *   delivery updates its message instead of posting a second).
 * - `slack_interactions_seen`: signatures of accepted interactions, pruned after the 5-minute window.
 */
const statements = [
  sql`CREATE TABLE slack_identities (
    principal_id text PRIMARY KEY CHECK (length(principal_id) <= 256),
    slack_user_id text NOT NULL UNIQUE CHECK (length(slack_user_id) <= 32),
    linked_by text NOT NULL CHECK (length(linked_by) <= 256),
    linked_at timestamptz NOT NULL
  )`,
  sql`CREATE TABLE slack_link_codes (
    code_hash text PRIMARY KEY CHECK (length(code_hash) = 64),
    principal_id text NOT NULL UNIQUE CHECK (length(principal_id) <= 256),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
  )`,
  sql`CREATE TABLE slack_messages (
    delivery_id text PRIMARY KEY CHECK (length(delivery_id) <= 64),
    request_id text NOT NULL CHECK (length(request_id) <= 256),
    channel text NOT NULL CHECK (length(channel) <= 63),
    conversation text NOT NULL CHECK (length(conversation) <= 32),
    ts text NOT NULL CHECK (length(ts) <= 32),
    event text NOT NULL CHECK (length(event) <= 64),
    created_at timestamptz NOT NULL
  )`,
  sql`CREATE INDEX slack_messages_request_idx ON slack_messages (request_id)`,
  sql`CREATE TABLE slack_interactions_seen (
    signature text PRIMARY KEY CHECK (length(signature) <= 128),
    seen_at timestamptz NOT NULL
  )`,
  sql`CREATE INDEX slack_interactions_seen_at_idx ON slack_interactions_seen (seen_at)`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['slack_interactions_seen', 'slack_messages', 'slack_link_codes', 'slack_identities']) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db);
  }
}
