import { sql, type Kysely } from 'kysely';

/**
 * Why: the REST API replays a POST sent again with the same `Idempotency-Key` (a client retrying
 * after a lost response must not create a second request), and shows each request's timeline,
 * which needs audit events by subject without reading the whole log.
 */
/** The subject of an audit event, from its stored text; queries must use this exact expression to use the index. */
export const AUDIT_SUBJECT_SQL = `substring(payload from '"subject":"([^"\\\\]*)","v":1}$')`;

const statements = [
  sql`CREATE TABLE idempotency_keys (
    principal_id text NOT NULL,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    fingerprint text NOT NULL,
    status integer,
    body text CHECK (length(body) <= 1048576),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (principal_id, key)
  )`,
  sql`CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at)`,
  // NB. Read from the canonical text, not with ::jsonb: a cast would make every append pay a JSON
  // parse, and refuse (rather than let verify report) a row someone tampered into invalid JSON.
  // "subject" is always the last key but "v" (keys are sorted), so the pattern is anchored there.
  sql`CREATE INDEX audit_events_subject_idx ON audit_events ((${sql.raw(AUDIT_SUBJECT_SQL)}))`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS audit_events_subject_idx`.execute(db);
  await sql`DROP TABLE IF EXISTS idempotency_keys`.execute(db);
}
