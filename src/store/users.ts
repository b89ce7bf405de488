import { sql, type Insertable } from 'kysely';
import type { Executor } from './executor.js';
import type { UsersTable } from './schema.js';

/** Users: local accounts, service identities and OIDC users (src/auth decides who may sign in). */

export async function insertUser(tx: Executor, row: Insertable<UsersTable>): Promise<void> {
  await tx.insertInto('users').values(row).execute();
}

export async function getUserByName(db: Executor, name: string) {
  return db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function getUserByExternalId(db: Executor, externalId: string) {
  return db.selectFrom('users').selectAll().where('external_id', '=', externalId).executeTakeFirst();
}

/** The enabled local user with this name and its password hash (sign-in), or undefined. */
export async function getLocalSignInUser(db: Executor, name: string) {
  return db
    .selectFrom('users')
    .select(['id', 'name', 'kind', 'groups', 'password_hash'])
    .where('name', '=', name)
    .where('source', '=', 'local')
    .where('disabled_at', 'is', null)
    .executeTakeFirst();
}

/** An enabled user by id, or undefined. */
export async function findEnabledUserById(db: Executor, id: string) {
  return db.selectFrom('users').select(['id', 'name', 'kind', 'groups']).where('id', '=', id).where('disabled_at', 'is', null).executeTakeFirst();
}

/** The enabled user with this name (id and name only), or undefined. */
export async function getEnabledUserByName(db: Executor, name: string) {
  return db.selectFrom('users').select(['id', 'name']).where('name', '=', name).where('disabled_at', 'is', null).executeTakeFirst();
}

/** Whether any enabled user has one of these names or is in one of these groups. */
export async function anyEnabledUserIn(db: Executor, names: readonly string[], groups: readonly string[]): Promise<boolean> {
  if (names.length === 0 && groups.length === 0) return false;
  const row = await db
    .selectFrom('users')
    .select('id')
    .where('disabled_at', 'is', null)
    .where((eb) => {
      const any = [];
      if (names.length > 0) any.push(eb('name', 'in', names));
      if (groups.length > 0) any.push(sql<boolean>`groups ?| ${sql.val(groups)}::text[]`);
      return eb.or(any);
    })
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function setUserNameAndGroups(tx: Executor, userId: string, name: string, groups: readonly string[]): Promise<void> {
  await tx
    .updateTable('users')
    .set({ name, groups: JSON.stringify(groups) })
    .where('id', '=', userId)
    .execute();
}

export async function setUserPasswordHash(tx: Executor, userId: string, passwordHash: string | null): Promise<void> {
  await tx.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).execute();
}

/**
 * Locks a user's row until the transaction ends: serialises changes that must be judged one at a
 * time per user (counting MFA failures).
 */
export async function lockUser(tx: Executor, userId: string): Promise<void> {
  await sql`SELECT id FROM users WHERE id = ${userId} FOR UPDATE`.execute(tx);
}

/**
 * Disables (with a reason) or re-enables a user; true if that changed anything. Ends nothing by
 * itself: the engine's deprovisioning ends sessions, tokens, requests and grants in the same transaction.
 */
export async function setUserDisabled(tx: Executor, userId: string, disabled: { at: Date; reason: string } | null): Promise<boolean> {
  const result = await tx
    .updateTable('users')
    .set(disabled ? { disabled_at: disabled.at, disabled_reason: disabled.reason } : { disabled_at: null, disabled_reason: null })
    .where('id', '=', userId)
    .where('disabled_at', disabled ? 'is' : 'is not', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Whether a user of this name exists and is disabled (principals without a user row are not). */
export async function isUserDisabled(db: Executor, name: string): Promise<boolean> {
  const row = await db.selectFrom('users').select('id').where('name', '=', name).where('disabled_at', 'is not', null).executeTakeFirst();
  return row !== undefined;
}

/** Pending requests of a principal (access and extension), oldest first, locked for change. */
export async function pendingRequestIdsOf(tx: Executor, principalId: string): Promise<string[]> {
  const rows = await tx.selectFrom('requests').select('id').where('principal_id', '=', principalId).where('status', '=', 'pending').orderBy('id').execute();
  return rows.map((r) => r.id);
}

/** Grants of a principal that hold or are about to hold access and are not ending yet. */
export async function unendedGrantIdsOf(tx: Executor, principalId: string): Promise<string[]> {
  const rows = await tx
    .selectFrom('grants')
    .select('id')
    .where('principal_id', '=', principalId)
    .where('status', 'in', ['provisioning', 'active'])
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

/** Records a user's IdP identity (`<issuer>#<sub>`) at their first sign-in, if none is recorded yet. */
export async function linkUserExternalId(tx: Executor, userId: string, externalId: string): Promise<void> {
  await tx.updateTable('users').set({ external_id: externalId }).where('id', '=', userId).where('external_id', 'is', null).execute();
}
