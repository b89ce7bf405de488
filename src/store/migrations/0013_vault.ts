import { sql, type Kysely } from 'kysely';

/**
 * Why: the vault (docs/vault.md) holds the passwords of shared privileged accounts, lends them
 * through grants and rotates them after use. One row per account: its current password and,
 * during a rotation, the pending one, both sealed (src/secrets). The pending password is stored
 * before the target is told to use it, so a rotation cut short by a crash finishes with the same
 * password (a write-ahead record, like Vault's static roles). Rotations are durable jobs, hence the
 * new job kind.
 */
/** The job kinds after 0012 (notifications), which this migration follows. */
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
];

function kindCheck(kinds: readonly string[]) {
  return sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (${sql.join(kinds.map((k) => sql.lit(k)))}))`;
}

const statements = [
  sql`CREATE TABLE vault_accounts (
    id text PRIMARY KEY,
    target text NOT NULL CHECK (length(target) <= 63),
    account text NOT NULL CHECK (length(account) <= 256),
    status text NOT NULL CHECK (status IN ('ready', 'checked_out', 'rotating')),
    generation integer NOT NULL CHECK (generation >= 1),
    current_sealed text NOT NULL CHECK (length(current_sealed) <= 8000),
    pending_sealed text CHECK (length(pending_sealed) <= 8000),
    pending_since timestamptz,
    holder_grant_id text,
    rotation_reason text CHECK (rotation_reason IN ('check_in', 'scheduled', 'onboarded')),
    rotated_at timestamptz,
    rotation_failures integer NOT NULL DEFAULT 0,
    failing_since timestamptz,
    last_error text CHECK (length(last_error) <= 2000),
    onboarded_at timestamptz NOT NULL,
    onboarded_by text NOT NULL,
    UNIQUE (target, account),
    CHECK (pending_sealed IS NULL OR status = 'rotating')
  )`,
  sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`,
  kindCheck([...KINDS_BEFORE, 'rotate']),
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind = 'rotate'`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await kindCheck(KINDS_BEFORE).execute(db);
  await sql`DROP TABLE IF EXISTS vault_accounts`.execute(db);
}
