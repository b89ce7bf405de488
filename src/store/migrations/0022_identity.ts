import { sql, type Kysely } from 'kysely';

/**
 * Why: the identity lifecycle (docs/identity.md). People and groups are pushed by an IdP over SCIM
 * or pulled from LDAP, and disabling a person must be recorded with why:
 * - users learn which directory manages them (`directory`: scim or ldap), their id there
 *   (`directory_id`: SCIM externalId, LDAP DN), a display name, and why they were disabled;
 * - directory groups are rows with members, so a SCIM group can be renamed and its members
 *   listed; a member's `users.groups` is kept equal to the names of the groups they belong to, so
 *   approver groups and policy subjects see a change before the person signs in again;
 * - SCIM bearer tokens are a table of their own: a SCIM token can do nothing but SCIM, and no
 *   API token is ever accepted by the SCIM routes;
 * - the LDAP sync is a durable job (`ldap_sync`), shared by replicas like the others.
 */
/** The job kinds after 0020 (access reviews), which this migration follows. */
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
  'review_open',
  'review_due',
];

function kindCheck(kinds: readonly string[]) {
  return sql`ALTER TABLE jobs ADD CONSTRAINT jobs_kind_check CHECK (kind IN (${sql.join(kinds.map((k) => sql.lit(k)))}))`;
}

const statements = [
  sql`ALTER TABLE users ADD COLUMN directory text CHECK (directory IN ('scim', 'ldap'))`,
  sql`ALTER TABLE users ADD COLUMN directory_id text CHECK (length(directory_id) <= 2048)`,
  sql`ALTER TABLE users ADD COLUMN display_name text CHECK (length(display_name) <= 256)`,
  sql`ALTER TABLE users ADD COLUMN disabled_reason text CHECK (length(disabled_reason) <= 500)`,
  sql`CREATE UNIQUE INDEX users_directory_id ON users (directory, directory_id) WHERE directory_id IS NOT NULL`,
  sql`CREATE TABLE directory_groups (
    id text PRIMARY KEY,
    directory text NOT NULL CHECK (directory IN ('scim', 'ldap')),
    display_name text NOT NULL UNIQUE CHECK (length(display_name) BETWEEN 1 AND 256),
    directory_id text CHECK (length(directory_id) <= 2048),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
  )`,
  sql`CREATE UNIQUE INDEX directory_groups_directory_id ON directory_groups (directory, directory_id) WHERE directory_id IS NOT NULL`,
  sql`CREATE TABLE directory_group_members (
    group_id text NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
  )`,
  sql`CREATE INDEX directory_group_members_user ON directory_group_members (user_id)`,
  sql`CREATE TABLE scim_tokens (
    id text PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
  )`,
  sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`,
  kindCheck([...KINDS_BEFORE, 'ldap_sync']),
];

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const statement of statements) await statement.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DELETE FROM jobs WHERE kind = 'ldap_sync'`.execute(db);
  await sql`ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check`.execute(db);
  await kindCheck(KINDS_BEFORE).execute(db);
  await sql`DROP TABLE IF EXISTS scim_tokens`.execute(db);
  await sql`DROP TABLE IF EXISTS directory_group_members`.execute(db);
  await sql`DROP TABLE IF EXISTS directory_groups`.execute(db);
  await sql`DROP INDEX IF EXISTS users_directory_id`.execute(db);
  for (const column of ['disabled_reason', 'display_name', 'directory_id', 'directory'])
    await sql`ALTER TABLE users DROP COLUMN IF EXISTS ${sql.ref(column)}`.execute(db);
}
