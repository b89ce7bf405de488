import { sql, type Kysely } from 'kysely';

/**
 * Why: the audit chain must leave the database as it is written (issue 14): to SIEM sinks, and its
 * signed checkpoints to witnesses the database's owner cannot rewrite. Each export (a sink's
 * events, a witness's checkpoints) keeps its own durable cursor here, so a sink that is down
 * catches up later from where it stopped, in order, and never holds up the lifecycle (exports read
 * the chain; nothing writes through them). `seq`/`hash` are the last event (for a sink) or the
 * last checkpoint (for a witness) delivered. The lease stops two replicas exporting one stream at
 * once; an expired lease is taken over, so at worst an event is sent twice (deduplicable by hash).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE TABLE audit_export_cursors (
    name text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 80),
    seq bigint NOT NULL DEFAULT 0 CHECK (seq >= 0),
    hash text NOT NULL DEFAULT ${sql.lit('0'.repeat(64))} CHECK (length(hash) = 64),
    exported_at timestamptz,
    exported_total bigint NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    last_error text CHECK (length(last_error) <= 2000),
    last_error_at timestamptz,
    lease_owner text CHECK (length(lease_owner) <= 64),
    lease_until timestamptz
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS audit_export_cursors`.execute(db);
}
