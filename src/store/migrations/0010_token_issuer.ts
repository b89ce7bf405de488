import { sql, type Kysely } from 'kysely';

/**
 * Why: a token acts as its owner, so who *issued* it must be known: an admin who mints a token
 * for a service identity that approves could otherwise approve their own request as that service
 * (four-eyes broken, and the audit showing only the service). `issued_by` is the principal name of
 * the issuer, or `cli:<os user>` for the offline `lapse admin token create`. Existing tokens take
 * the actor of their `token.created` audit event, or else their owner (they issued it themselves).
 * NB. The audit payload is text; only the `token.created` rows are parsed.
 */
const statements = [
  sql`ALTER TABLE api_tokens ADD COLUMN issued_by text`,
  sql`UPDATE api_tokens t SET issued_by = c.actor
      FROM (SELECT (payload::jsonb)->>'subject' AS token_id, (payload::jsonb)->>'actor' AS actor
            FROM audit_events WHERE payload LIKE '%"action":"token.created"%') c
      WHERE c.token_id = t.id`,
  sql`UPDATE api_tokens t SET issued_by = u.name FROM users u WHERE u.id = t.user_id AND t.issued_by IS NULL`,
  sql`ALTER TABLE api_tokens ALTER COLUMN issued_by SET NOT NULL`,
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_tokens DROP COLUMN IF EXISTS issued_by`.execute(db);
}
