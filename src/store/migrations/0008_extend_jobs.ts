import { sql, type Kysely } from 'kysely';

/**
 * Why: an extended grant must stay usable until its new expiry. Targets that enforce an expiry of
 * their own (PostgreSQL VALID UNTIL, an SSH certificate's valid-before) need to be told, so an
 * approved extension schedules an `extend` job that moves that backstop (retried like provision).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('provision', 'expire', 'revoke', 'request_timeout', 'reconcile', 'extend'))`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind = 'extend'`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('provision', 'expire', 'revoke', 'request_timeout', 'reconcile'))`.execute(db);
}
